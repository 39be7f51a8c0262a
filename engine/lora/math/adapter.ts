/**
 * What every family's math produces for one model weight. Additive families give a change ΔW that does not
 * depend on the weight (several simply add up); weight-dependent ones (DoRA, GLoRA, (IA)^3, OFT/BOFT) give
 * the adapted weight F(W) of the weight they are applied to. Shapes are checked when an adapter is made,
 * from tensor shapes alone; tensor data is read on first use.
 */
import { numel } from '../../safetensors/index.ts';
import { foldTuckerCore, matmul, matmulTN, trailing } from '../linalg.ts';

/** One module's tensors, by normalised entry name (keys.ts). */
export interface ModuleData {
  readonly name: string;
  has(entry: string): boolean;
  shape(entry: string): readonly number[];
  /** The entry's values as float32 (cached; never modify). */
  read(entry: string): Float32Array;
  /** alpha/rank with the usual defaults (file.ts). */
  scale(rank: number | undefined): number;
}

/** ΔW = scale · up · down: what a runtime can run as a side branch next to the base weight. */
export interface LowRank {
  /** [out, rank] */
  readonly up: Float32Array;
  /** [rank, in·kh·kw] (a Tucker core already folded in) */
  readonly down: Float32Array;
  readonly rank: number;
  readonly scale: number;
}

export interface AdditiveAdapter {
  readonly kind: 'additive';
  /** ΔW at strength 1 (alpha/rank applied), in the target's shape. A fresh array. */
  delta(): Float32Array;
  /** Present for LoRA/LoCon: the factors of delta(). */
  readonly lowRank?: () => LowRank;
}

export interface WeightAdapter {
  readonly kind: 'weight';
  /** The fully adapted weight F(W) at strength 1, for the current weight W (not modified). */
  adapt(weight: Float32Array): Float32Array;
}

export type Adapter = AdditiveAdapter | WeightAdapter;

/** A module whose tensors do not fit the model weight they name; the caller adds the LoRA's name. */
export class ShapeError extends Error {}

/** Checks that a [rows, cols] change can be laid onto `target` (same first dimension, same element count). */
export function expectMatrix(what: string, rows: number, cols: number, target: readonly number[]): void {
  if (rows !== target[0] || rows * cols !== numel(target)) {
    throw new ShapeError(`${what} gives a [${rows}, ${cols}] change but the model weight is [${target.join(', ')}]`);
  }
}

export function scaled(values: Float32Array, factor: number): Float32Array {
  if (factor !== 1) for (let i = 0; i < values.length; i++) values[i] *= factor;
  return values;
}

/** A [rows, cols] matrix computed on demand. */
export interface LazyMatrix {
  readonly rows: number;
  readonly cols: number;
  values(): Float32Array;
}

/**
 * The product of the factor pair `a`·`b` (LoHa arms, LoKr factors), or with a Tucker core `t`
 * Σ_i Σ_j t[i,j,h,w] · a[i,o] · b[j,c], where `a` is stored rank-first.
 */
export function factorProduct(d: ModuleData, a: string, b: string, t: string): LazyMatrix {
  const as = d.shape(a);
  const bs = d.shape(b);
  if (d.has(t)) {
    const ts = d.shape(t);
    if (ts[0] !== as[0] || ts[1] !== bs[0]) throw new ShapeError(`${d.name}: ${t} is [${ts.join(', ')}], ${a} [${as.join(', ')}], ${b} [${bs.join(', ')}]`);
    const cols = trailing(bs) * (trailing(ts) / ts[1]);
    return { rows: as[1], cols, values: () => matmulTN(d.read(a), as[0], as[1], foldTuckerCore(d.read(t), ts, d.read(b), trailing(bs)), cols) };
  }
  if (as[1] !== bs[0]) throw new ShapeError(`${d.name}: ${a} is [${as.join(', ')}] but ${b} is [${bs.join(', ')}]`);
  return { rows: as[0], cols: trailing(bs), values: () => matmul(d.read(a), as[0], as[1], d.read(b), trailing(bs)) };
}
