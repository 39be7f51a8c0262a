/**
 * ONNX operators as functions with shape inference, so model code reads like the math
 * (`silu(groupNorm(x, ...))`) and a wrong shape fails while the graph is built, not at run time.
 */
import { MS_DOMAIN, ONNX_TYPE, ShapeError, type Dim, type ElemType, type Value } from './graph.ts';

function same(a: Dim, b: Dim): boolean {
  return a === b;
}

function fail(op: string, message: string): never {
  throw new ShapeError(`${op}: ${message}`);
}

function shapeText(v: Value): string {
  return `${v.name} [${v.shape.join(', ')}]`;
}

/** Numpy-style broadcasting of two shapes; symbolic dims are trusted to agree. */
export function broadcastShapes(op: string, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || same(x, y)) out.push(x);
    else if (typeof x === 'number' && typeof y === 'number') fail(op, `cannot broadcast [${a}] with [${b}]`);
    else out.push(typeof x === 'number' ? x : y);
  }
  return out;
}

function binary(op: string, a: Value, b: Value): Value {
  return a.graph.node(op, [a, b], [{ type: a.type, shape: broadcastShapes(op, a.shape, b.shape) }])[0];
}

export const add = (a: Value, b: Value): Value => binary('Add', a, b);
export const mul = (a: Value, b: Value): Value => binary('Mul', a, b);

function unary(op: string, x: Value, attrs: Record<string, number | string | undefined> = {}): Value {
  return x.graph.node(op, [x], [{ type: x.type, shape: x.shape }], attrs)[0];
}

export const sigmoid = (x: Value): Value => unary('Sigmoid', x);
export const sin = (x: Value): Value => unary('Sin', x);
export const cos = (x: Value): Value => unary('Cos', x);

/** x · sigmoid(x) */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/** Exact (erf) GELU. */
export function gelu(x: Value): Value {
  return unary('Gelu', x);
}

/** OpenAI CLIP's x · sigmoid(1.702 x). */
export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, x.graph.scalar(1.702))));
}

export function cast(x: Value, to: ElemType): Value {
  const code = ONNX_TYPE[to];
  return x.graph.node('Cast', [x], [{ type: to, shape: x.shape }], { to: code })[0];
}

/** Batched matrix product [..., M, K] × [..., K, N]. */
export function matmul(a: Value, b: Value): Value {
  if (a.rank < 2 || b.rank < 2) fail('MatMul', `needs rank ≥ 2, got ${shapeText(a)} and ${shapeText(b)}`);
  const k1 = a.dim(-1);
  const k2 = b.dim(-2);
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    fail('MatMul', `inner sizes differ: ${shapeText(a)} × ${shapeText(b)}`);
  }
  const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return a.graph.node('MatMul', [a, b], [{ type: a.type, shape: [...batch, a.dim(-2), b.dim(-1)] }])[0];
}

/**
 * A fully connected layer y = x·Wᵀ + b with W stored [out, in] as PyTorch does. x is 2-D [rows, in]:
 * Gemm with transB reads the weight in place (no transposed copy) and lets onnxruntime pre-pack it.
 */
export function linear(x: Value, weight: Value, bias?: Value): Value {
  if (x.rank !== 2 || weight.rank !== 2) fail('Gemm', `expects 2-D input and weight, got ${shapeText(x)}, ${shapeText(weight)}`);
  const [out, inp] = weight.shape;
  if (typeof x.dim(1) === 'number' && x.dim(1) !== inp) fail('Gemm', `input ${shapeText(x)} does not match weight ${shapeText(weight)}`);
  if (bias && bias.shape[0] !== out) fail('Gemm', `bias ${shapeText(bias)} does not match weight ${shapeText(weight)}`);
  return x.graph.node('Gemm', [x, weight, bias], [{ type: 'float32', shape: [x.dim(0), out] }], { transB: 1 })[0];
}

/** acc + x·Wᵀ in one Gemm (the sum is fused into the product: no extra pass over acc). */
export function linearAccumulate(x: Value, weight: Value, acc: Value): Value {
  if (x.rank !== 2 || weight.rank !== 2 || acc.rank !== 2) fail('Gemm', `expects 2-D operands, got ${shapeText(x)}, ${shapeText(weight)}, ${shapeText(acc)}`);
  if (typeof acc.dim(1) === 'number' && acc.dim(1) !== weight.dim(0)) fail('Gemm', `accumulator ${shapeText(acc)} does not match weight ${shapeText(weight)}`);
  return x.graph.node('Gemm', [x, weight, acc], [{ type: 'float32', shape: acc.shape }], { transB: 1 })[0];
}

function convOut(size: Dim, kernel: number, stride: number, pad: number): Dim {
  if (typeof size === 'number') return Math.floor((size + 2 * pad - kernel) / stride) + 1;
  if (stride === 1 && kernel === 2 * pad + 1) return size;
  return `conv(${size},${kernel},${stride},${pad})`;
}

/** 2-D convolution, NCHW, square kernel, symmetric padding. */
export function conv2d(x: Value, weight: Value, bias: Value | undefined, opts: { stride?: number; pad?: number } = {}): Value {
  const stride = opts.stride ?? 1;
  if (x.rank !== 4 || weight.rank !== 4) fail('Conv', `expects 4-D input and weight, got ${shapeText(x)}, ${shapeText(weight)}`);
  const [out, inp, kh, kw] = weight.shape as number[];
  if (kh !== kw) fail('Conv', `non-square kernel ${shapeText(weight)}`);
  const pad = opts.pad ?? (kh - 1) / 2;
  if (typeof x.dim(1) === 'number' && x.dim(1) !== inp) fail('Conv', `input ${shapeText(x)} has ${x.dim(1)} channels, weight ${shapeText(weight)} wants ${inp}`);
  if (bias && bias.shape[0] !== out) fail('Conv', `bias ${shapeText(bias)} does not match ${out} output channels`);
  const shape = [x.dim(0), out, convOut(x.dim(2), kh, stride, pad), convOut(x.dim(3), kw, stride, pad)];
  return x.graph.node('Conv', [x, weight, bias], [{ type: 'float32', shape }], {
    kernel_shape: [kh, kw],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
  })[0];
}

/**
 * ONNX Reshape: `spec` entries are sizes, 0 (keep the input's size at that index) or -1 (whatever is left).
 */
export function reshape(x: Value, spec: readonly number[]): Value {
  const known = spec.map((s, i) => (s === 0 ? x.shape[i] : s));
  const minus = known.indexOf(-1);
  if (minus >= 0) {
    const total = product(x.shape);
    const rest = product(known.filter((_, i) => i !== minus));
    if (typeof total === 'number' && typeof rest === 'number') {
      if (total % rest !== 0) fail('Reshape', `${shapeText(x)} cannot become [${spec}]`);
      known[minus] = total / rest;
    } else {
      known[minus] = `reshape(${x.name})`;
    }
  } else {
    const a = product(x.shape);
    const b = product(known);
    if (typeof a === 'number' && typeof b === 'number' && a !== b) fail('Reshape', `${shapeText(x)} cannot become [${spec}]`);
  }
  return x.graph.node('Reshape', [x, x.graph.ints(spec)], [{ type: x.type, shape: known }])[0];
}

function product(shape: readonly Dim[]): Dim {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return 'symbolic';
    n *= d;
  }
  return n;
}

export function transpose(x: Value, perm: readonly number[]): Value {
  if (perm.length !== x.rank) fail('Transpose', `perm [${perm}] does not fit ${shapeText(x)}`);
  return x.graph.node('Transpose', [x], [{ type: x.type, shape: perm.map((p) => x.shape[p]) }], { perm })[0];
}

export function concat(values: readonly Value[], axis: number): Value {
  const first = values[0];
  const ax = axis < 0 ? first.rank + axis : axis;
  let size: Dim = 0;
  for (const v of values) {
    if (v.rank !== first.rank) fail('Concat', `ranks differ: ${values.map(shapeText).join(', ')}`);
    const d = v.shape[ax];
    size = typeof size === 'number' && typeof d === 'number' ? size + d : `concat(${values.map((x) => x.name).join(',')})`;
  }
  const shape = first.shape.map((d, i) => (i === ax ? size : d));
  return first.graph.node('Concat', values, [{ type: first.type, shape }], { axis })[0];
}

/** Splits `x` along `axis` into pieces of the given sizes. */
export function split(x: Value, axis: number, sizes: readonly number[]): Value[] {
  const ax = axis < 0 ? x.rank + axis : axis;
  const total = x.shape[ax];
  if (typeof total === 'number' && sizes.reduce((a, b) => a + b, 0) !== total) {
    fail('Split', `sizes [${sizes}] do not add up to ${shapeText(x)} axis ${axis}`);
  }
  const outs = sizes.map((s) => ({ type: x.type, shape: x.shape.map((d, i) => (i === ax ? s : d)) }));
  return x.graph.node('Split', [x, x.graph.ints(sizes)], outs, { axis });
}

export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const shape: Dim[] = [...x.shape];
  for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a < 0 ? shape.length + 1 + a : a, 0, 1);
  return x.graph.node('Unsqueeze', [x, x.graph.ints(axes)], [{ type: x.type, shape }])[0];
}

/** Gathers rows of `data` (axis 0) with integer `indices`. */
export function gather(data: Value, indices: Value, axis = 0): Value {
  const ax = axis < 0 ? data.rank + axis : axis;
  const shape = [...data.shape.slice(0, ax), ...indices.shape, ...data.shape.slice(ax + 1)];
  return data.graph.node('Gather', [data, indices], [{ type: data.type, shape }], { axis })[0];
}

export function argmax(x: Value, axis: number, keepdims = false): Value {
  const ax = axis < 0 ? x.rank + axis : axis;
  const shape = keepdims ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
  return x.graph.node('ArgMax', [x], [{ type: 'int64', shape }], { axis, keepdims: keepdims ? 1 : 0 })[0];
}

export function layerNorm(x: Value, scale: Value, bias: Value, eps: number): Value {
  if (scale.shape[0] !== x.dim(-1)) fail('LayerNormalization', `scale ${shapeText(scale)} does not fit ${shapeText(x)}`);
  return x.graph.node('LayerNormalization', [x, scale, bias], [{ type: x.type, shape: x.shape }], { axis: -1, epsilon: { float: eps } })[0];
}

/**
 * Group normalisation of NCHW `x` with per-channel scale and bias. Written as InstanceNormalization over
 * [N, groups, rest] plus the affine step: onnxruntime's CPU provider runs that a third faster than
 * GroupNormalization-21, which it expands into elementwise ops (measured on 2x320x64x64).
 */
export function groupNorm(x: Value, scale: Value, bias: Value, groups: number, eps: number): Value {
  const channels = x.dim(1);
  if (scale.shape[0] !== channels) fail('GroupNormalization', `scale ${shapeText(scale)} does not fit ${shapeText(x)}`);
  if (typeof channels === 'number' && channels % groups !== 0) fail('GroupNormalization', `${channels} channels are not divisible into ${groups} groups`);
  const g = x.graph;
  const grouped = reshape(x, [0, groups, -1]);
  const ones = g.constant(new Float32Array(groups).fill(1), [groups]);
  const zeros = g.constant(new Float32Array(groups), [groups]);
  const normed = g.node('InstanceNormalization', [grouped, ones, zeros], [{ type: x.type, shape: grouped.shape }], { epsilon: { float: eps } })[0];
  const perChannel = (v: Value) => reshape(v, [-1, 1, 1]);
  return add(mul(reshapeTo(normed, shapeOf(x), x.shape), perChannel(scale)), perChannel(bias));
}

/** Nearest-neighbour upsampling by an integer factor, as torch.nn.functional.interpolate(mode="nearest"). */
export function upsampleNearest(x: Value, factor: number): Value {
  const scales = x.graph.constant([1, 1, factor, factor], [4]);
  const grow = (d: Dim): Dim => (typeof d === 'number' ? d * factor : `${d}*${factor}`);
  const shape = [x.dim(0), x.dim(1), grow(x.dim(2)), grow(x.dim(3))];
  return x.graph.node('Resize', [x, undefined, scales], [{ type: x.type, shape }], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  })[0];
}

/**
 * Multi-head scaled dot-product attention on [batch, tokens, heads·headDim] tensors
 * (onnxruntime's fused com.microsoft.MultiHeadAttention: the fastest form measured on the CPU provider).
 * `attnBias` is added to the scores before the softmax (e.g. a causal mask).
 */
export function attention(q: Value, k: Value, v: Value, heads: number, attnBias?: Value): Value {
  const width = q.dim(2);
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) fail('MultiHeadAttention', `expects 3-D q/k/v, got ${[q, k, v].map(shapeText).join(', ')}`);
  if (typeof width === 'number' && width % heads !== 0) fail('MultiHeadAttention', `width ${width} is not divisible by ${heads} heads`);
  if (k.dim(2) !== width) fail('MultiHeadAttention', `key ${shapeText(k)} does not match query ${shapeText(q)}`);
  // Inputs 3 and 4 (packed bias, key padding mask) are unused; 5 is the additive [1|B, 1|heads, S, L] bias.
  const inputs = attnBias ? [q, k, v, undefined, undefined, attnBias] : [q, k, v];
  return q.graph.node('MultiHeadAttention', inputs, [{ type: 'float32', shape: [q.dim(0), q.dim(1), v.dim(2)] }], { num_heads: heads }, undefined, MS_DOMAIN)[0];
}

/** The runtime shape of `x` (or dims [start, end)) as a 1-D int64 value. */
export function shapeOf(x: Value, start = 0, end = x.rank): Value {
  return x.graph.node('Shape', [x], [{ type: 'int64', shape: [end - start] }], { start, end })[0];
}

/** Reshape to a shape computed at run time; `result` is the shape as far as it is known while building. */
export function reshapeTo(x: Value, shape: Value, result: readonly Dim[]): Value {
  return x.graph.node('Reshape', [x, shape], [{ type: x.type, shape: result }])[0];
}

/** Nearest-neighbour resize of NCHW `x` to the spatial size of `like` (ComfyUI's upsample to the skip's size). */
export function upsampleNearestTo(x: Value, like: Value): Value {
  const sizes = concat([shapeOf(x, 0, 2), shapeOf(like, 2, 4)], 0);
  return x.graph.node('Resize', [x, undefined, undefined, sizes], [{ type: x.type, shape: [x.dim(0), x.dim(1), like.dim(2), like.dim(3)] }], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  })[0];
}
