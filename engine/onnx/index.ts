export { Graph, Value, ShapeError, OPSET, type Dim, type ElemType, type WeightSource, type BuiltModel } from './graph.ts';
export * as ops from './ops.ts';
