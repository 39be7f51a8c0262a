/**
 * The building blocks every model graph shares: weights bound from a checkpoint, and linear / conv layers
 * that may carry a LoRA branch. Model code (clip.ts, unet.ts, vae.ts) only calls these, so how a weight
 * enters the graph (constant, fed input, constant + low-rank branch) is decided in one place.
 */
import { ops, type Graph, type Value, type WeightSource } from '../onnx/index.ts';
import { fromFloat32 } from '../tensor/dtype.ts';
import type { Checkpoint } from './checkpoint.ts';
import { readRawWeight, readWeight, type WeightRef } from './weights.ts';

/** How a module's weight enters the graph. */
export type WeightMode =
  /** A constant initializer (fastest: onnxruntime pre-packs it). */
  | 'const'
  /** A graph input fed at run time, so it can change without rebuilding the session. */
  | 'input';

export interface GraphPlan {
  /** Mode of a canonical weight name; default 'const'. */
  weightMode?(name: string): WeightMode;
  /**
   * Modules (canonical path without `.weight`) that get a LoRA branch y += up(down(x)); the rank is a
   * symbolic dimension so LoRAs of any rank can be fed to the same session.
   */
  loraBranch?(module: string): boolean;
}

/**
 * Names of the inputs a LoRA branch reads, for the runtime that feeds them: the factors, fed when the LoRAs
 * change, and `scale` (strength × alpha/rank per rank row), the only thing a step schedule re-feeds.
 */
export function branchInputs(module: string): { down: string; up: string; scale: string } {
  return { down: `lora:${module}:down`, up: `lora:${module}:up`, scale: `lora:${module}:scale` };
}

const STORED_TYPES = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/**
 * The initializer for a checkpoint weight, in the form it is stored: float16/bfloat16 stay so on disk and are
 * converted by a Cast in the graph (onnxruntime folds it once, at load), a transposed matrix gets a Transpose.
 * Other dtypes are converted to float32 in TypeScript.
 */
export function weightSource(key: string, ref: WeightRef): WeightSource {
  const type = STORED_TYPES[ref.dtype as keyof typeof STORED_TYPES];
  const storedShape = ref.transposed ? [ref.shape[1], ref.shape[0]] : ref.shape;
  if (!type) return { key, shape: ref.shape, type: 'float32', load: () => fromFloat32(readWeight(ref), 'F32') };
  return {
    key,
    shape: storedShape,
    type,
    stored: { path: ref.file.path, offset: ref.offset, byteLength: ref.byteLength, identity: ref.file.identity },
    load: () => readRawWeight(ref),
  };
}

export class ModelBuilder {
  constructor(
    readonly graph: Graph,
    readonly checkpoint: Checkpoint,
    readonly plan: GraphPlan = {},
  ) {}

  has(name: string): boolean {
    return this.checkpoint.has(name);
  }

  /** A weight by canonical name, optionally viewed with another shape of the same size. */
  weight(name: string, shape?: readonly number[]): Value {
    const ref = this.checkpoint.weight(name);
    const viewShape = shape ?? ref.shape;
    if (viewShape.reduce((a, b) => a * b, 1) !== ref.shape.reduce((a, b) => a * b, 1)) {
      throw new Error(`${name}: cannot view [${ref.shape}] as [${viewShape}]`);
    }
    if (this.plan.weightMode?.(name) === 'input') {
      return this.graph.input(`weight:${name}`, 'float32', viewShape);
    }
    let value = this.graph.weight(weightSource(name, ref));
    if (value.type !== 'float32') value = ops.cast(value, 'float32');
    if (ref.transposed) value = ops.transpose(value, [1, 0]);
    return viewShape.join() === value.shape.join() ? value : ops.reshape(value, viewShape);
  }

  /** y = x·Wᵀ + b on 2-D rows [n, in], plus the module's LoRA branch when planned. */
  linear(x: Value, module: string, bias = this.has(`${module}.bias`)): Value {
    const y = ops.linear(x, this.weight(`${module}.weight`), bias ? this.weight(`${module}.bias`) : undefined);
    if (!this.plan.loraBranch?.(module)) return y;
    const names = branchInputs(module);
    const [out, inp] = this.checkpoint.weight(`${module}.weight`).shape;
    const rank = `rank:${module}`;
    const down = this.graph.input(names.down, 'float32', [rank, inp]);
    const up = this.graph.input(names.up, 'float32', [out, rank]);
    const scale = this.graph.input(names.scale, 'float32', [rank]);
    return ops.linearAccumulate(ops.mul(ops.linear(x, down), scale), up, y);
  }

  /** A Linear stored as a 1x1 conv [out, in, 1, 1] (or the reverse) applied to 2-D rows. */
  linearFromConv(x: Value, module: string): Value {
    const ref = this.checkpoint.weight(`${module}.weight`);
    const shape = [ref.shape[0], ref.shape[1]];
    return ops.linear(x, this.weight(`${module}.weight`, shape), this.weight(`${module}.bias`));
  }

  /** 2-D convolution, plus the module's LoRA branch (down conv with the same stride, 1x1 up conv). */
  conv(x: Value, module: string, opts: { stride?: number; pad?: number } = {}): Value {
    const ref = this.checkpoint.weight(`${module}.weight`);
    const weight = ref.shape.length === 2 ? this.weight(`${module}.weight`, [...ref.shape, 1, 1]) : this.weight(`${module}.weight`);
    const bias = this.has(`${module}.bias`) ? this.weight(`${module}.bias`) : undefined;
    const y = ops.conv2d(x, weight, bias, opts);
    if (!this.plan.loraBranch?.(module)) return y;
    const names = branchInputs(module);
    const [out, inp, kh, kw] = weight.shape as number[];
    const rank = `rank:${module}`;
    const down = this.graph.input(names.down, 'float32', [rank, inp, kh, kw]);
    const up = this.graph.input(names.up, 'float32', [out, rank, 1, 1]);
    const scale = this.graph.input(names.scale, 'float32', [rank, 1, 1]);
    const low = ops.mul(ops.conv2d(x, down, undefined, { ...opts, pad: opts.pad ?? (kh - 1) / 2 }), scale);
    return ops.add(y, ops.conv2d(low, up, undefined));
  }

  groupNorm(x: Value, module: string, eps: number, groups = 32): Value {
    return ops.groupNorm(x, this.weight(`${module}.weight`), this.weight(`${module}.bias`), groups, eps);
  }

  layerNorm(x: Value, module: string, eps = 1e-5): Value {
    return ops.layerNorm(x, this.weight(`${module}.weight`), this.weight(`${module}.bias`), eps);
  }
}
