import { InvalidInputError } from '../errors.ts';
import { numel } from '../safetensors/index.ts';
import { TorchGenerator } from './generator.ts';

/** One-shot `torch.manual_seed(seed); torch.randn(shape)` on the CPU generator. */
export function torchRandn(seed: bigint, shape: readonly number[]): Float32Array {
  return new TorchGenerator(seed).randn(shape);
}

/**
 * ComfyUI's `prepare_noise` (comfy/sample.py): the initial noise of a latent batch of `shape` [B, …].
 * Without `batchIndex` the whole batch is one draw. With it (set by LatentFromBatch / RepeatLatentBatch),
 * single-sample draws are made in order for indices 0 … max(batchIndex), and sample k of the result is draw
 * number batchIndex[k], so a sample keeps its noise when it is taken out of (or repeated in) a batch.
 */
export function prepareNoise(seed: bigint, shape: readonly number[], batchIndex?: readonly number[]): Float32Array {
  if (batchIndex === undefined) return torchRandn(seed, shape);
  if (batchIndex.length !== shape[0] || !batchIndex.every((i) => Number.isSafeInteger(i) && i >= 0)) {
    throw new InvalidInputError(
      `batch_index [${batchIndex.join(', ')}] does not fit a latent batch of shape [${shape.join(', ')}]: ` +
        'it needs one whole number ≥ 0 per batch entry',
    );
  }
  const sampleShape = [1, ...shape.slice(1)];
  const wanted = new Set(batchIndex);
  const draws = new Map<number, Float32Array>();
  const generator = new TorchGenerator(seed);
  const last = Math.max(-1, ...batchIndex);
  for (let i = 0; i <= last; i++) {
    const noise = generator.randn(sampleShape);
    if (wanted.has(i)) draws.set(i, noise);
  }
  const sampleSize = numel(sampleShape);
  const out = new Float32Array(batchIndex.length * sampleSize);
  batchIndex.forEach((index, k) => out.set(draws.get(index)!, k * sampleSize));
  return out;
}
