import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

/** A tensor dimension: a number when known while building, a symbol (e.g. "batch") when it is not. */
export type Dim = number | string;

export type ElemType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool';

export const ONNX_TYPE: Record<ElemType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  bfloat16: TensorProto_DataType.BFLOAT16,
  int64: TensorProto_DataType.INT64,
  int32: TensorProto_DataType.INT32,
  bool: TensorProto_DataType.BOOL,
};

const ELEMENT_BYTES = { float32: 4, float16: 2, bfloat16: 2 } as const;

/** ai.onnx opset 21 gives GroupNormalization with per-channel scale; com.microsoft adds MultiHeadAttention. */
export const OPSET = 21;
export const MS_DOMAIN = 'com.microsoft';

/** A value flowing through the graph, with its shape as far as it is known while building. */
export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly type: ElemType,
    readonly shape: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** The size of dimension `axis` (negative counts from the end). */
  dim(axis: number): Dim {
    return this.shape[axis < 0 ? this.shape.length + axis : axis];
  }
}

/**
 * A weight that lives outside the graph protobuf: the session receives its float32 bytes through
 * onnxruntime's `externalData`, read straight from the checkpoint when the session is created.
 */
export interface WeightSource {
  /** Unique name, usually the canonical tensor name in the checkpoint. */
  readonly key: string;
  /** Shape and element type of the initializer. */
  readonly shape: readonly number[];
  readonly type: 'float32' | 'float16' | 'bfloat16';
  /**
   * Where the bytes already are on disk, so the session can read them in place; otherwise `load` is used.
   * `identity` is the file's device and inode when it was opened: a path that names another file by now
   * (the checkpoint was replaced) is not read in place.
   */
  readonly stored?: {
    readonly path: string;
    readonly offset: number;
    readonly byteLength: number;
    readonly identity: { readonly dev: number; readonly ino: number };
  };
  /** The initializer's little-endian bytes. */
  load(): Uint8Array;
}

export type AttrValue = number | string | readonly number[] | { floats: readonly number[] } | { float: number };

export interface BuiltModel {
  readonly bytes: Uint8Array;
  /** External weights in the order onnxruntime needs them: `location` is the name used in the protobuf. */
  readonly weights: readonly { location: string; source: WeightSource }[];
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export class ShapeError extends Error {}

/** Builds an ONNX model node by node, checking shapes as it goes. */
export class Graph {
  private readonly nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly inlineInitializers: TensorProto[] = [];
  private readonly external = new Map<string, { location: string; source: WeightSource; value: Value }>();
  private readonly names = new Set<string>();
  private counter = 0;
  private scope: string[] = [];

  constructor(readonly name: string) {}

  /** Runs `build` with node names prefixed by `name` (readable names in profiles and errors). */
  within<T>(name: string, build: () => T): T {
    this.scope.push(name);
    try {
      return build();
    } finally {
      this.scope.pop();
    }
  }

  private fresh(hint: string): string {
    const base = [...this.scope, hint].join('/');
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, type: ElemType, shape: readonly Dim[]): Value {
    if (this.names.has(name)) throw new Error(`duplicate graph input ${name}`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, type, shape));
    return new Value(this, name, type, shape);
  }

  output(value: Value, name: string): void {
    const renamed = name === value.name ? value : this.node('Identity', [value], [{ type: value.type, shape: value.shape }], {}, name)[0];
    this.outputs.push(valueInfo(renamed.name, renamed.type, renamed.shape));
  }

  /** An external float32 weight; the same source key used twice yields the same value. */
  weight(source: WeightSource): Value {
    const known = this.external.get(source.key);
    if (known) return known.value;
    const name = this.fresh(source.key);
    const location = `w${this.external.size}`;
    const value = new Value(this, name, source.type, source.shape);
    this.external.set(source.key, { location, source, value });
    return value;
  }

  /** A small constant stored inside the protobuf (shapes, axes, scalars, frequency tables). */
  constant(values: ArrayLike<number>, shape: readonly number[], type: ElemType = 'float32'): Value {
    const name = this.fresh('const');
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== values.length) throw new ShapeError(`constant of shape [${shape}] needs ${n} values, got ${values.length}`);
    let raw: Uint8Array;
    if (type === 'float32') raw = new Uint8Array(Float32Array.from(values).buffer);
    else if (type === 'int64') raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
    else if (type === 'int32') raw = new Uint8Array(Int32Array.from(values).buffer);
    else raw = Uint8Array.from(values);
    this.inlineInitializers.push(
      create(TensorProtoSchema, { name, dims: shape.map(BigInt), dataType: ONNX_TYPE[type], rawData: raw as Uint8Array<ArrayBuffer> }),
    );
    return new Value(this, name, type, shape);
  }

  scalar(value: number, type: ElemType = 'float32'): Value {
    return this.constant([value], [], type);
  }

  /** A 1-D int64 constant, the usual form of shapes and axes. */
  ints(values: readonly number[]): Value {
    return this.constant(values, [values.length], 'int64');
  }

  /** Adds one node. `outputs` gives the type and inferred shape of each output. */
  node(
    op: string,
    inputs: readonly (Value | undefined)[],
    outputs: readonly { type: ElemType; shape: readonly Dim[] }[],
    attrs: Record<string, AttrValue | undefined> = {},
    outputName?: string,
    domain = '',
  ): Value[] {
    for (const v of inputs) if (v && v.graph !== this) throw new Error(`value ${v.name} belongs to another graph`);
    const nodeName = this.fresh(op);
    const outs = outputs.map((o, i) => {
      const name = i === 0 && outputName ? outputName : `${nodeName}:${i}`;
      if (name !== `${nodeName}:${i}`) {
        if (this.names.has(name)) throw new Error(`duplicate value name ${name}`);
        this.names.add(name);
      }
      return new Value(this, name, o.type, o.shape);
    });
    this.nodes.push(
      create(NodeProtoSchema, {
        name: nodeName,
        opType: op,
        domain,
        input: inputs.map((v) => v?.name ?? ''),
        output: outs.map((v) => v.name),
        attribute: Object.entries(attrs)
          .filter((e): e is [string, AttrValue] => e[1] !== undefined)
          .map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  build(): BuiltModel {
    const weights = [...this.external.values()];
    const externalInitializers = weights.map(({ location, source, value }) =>
      create(TensorProtoSchema, {
        name: value.name,
        dims: source.shape.map(BigInt),
        dataType: ONNX_TYPE[source.type],
        dataLocation: TensorProto_DataLocation.EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: 'location', value: location }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: '0' }),
          create(StringStringEntryProtoSchema, {
            key: 'length',
            value: String(source.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[source.type]),
          }),
        ],
      }),
    );
    const graph = create(GraphProtoSchema, {
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: [...this.inlineInitializers, ...externalInitializers],
    });
    const model = create(ModelProtoSchema, {
      irVersion: 10n,
      producerName: 'loragraph',
      opsetImport: [
        create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) }),
        create(OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n }),
      ],
      graph,
    });
    return {
      bytes: toBinary(ModelProtoSchema, model),
      weights: weights.map(({ location, source }) => ({ location, source })),
      inputs: this.inputs.map((i) => i.name),
      outputs: this.outputs.map((o) => o.name),
    };
  }
}

function valueInfo(name: string, type: ElemType, shape: readonly Dim[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: ONNX_TYPE[type],
          shape: create(TensorShapeProtoSchema, {
            dim: shape.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float: x } for non-integers`);
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
  }
  if (typeof value === 'string') {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  if ('float' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value.float });
  if ('floats' in value) {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOATS, floats: [...value.floats] });
  }
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map(BigInt) });
}
