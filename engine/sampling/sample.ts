import { ksamplerSigmas, type SigmaPlan } from './ksampler-sigmas.ts';
import type { DiscreteModelSampling } from './model-sampling.ts';
import { getSampler } from './samplers.ts';
import type { Denoiser, NoiseSource, Sampler, SamplingHooks } from './types.ts';

export interface RunOptions {
  denoiser: Denoiser;
  /** Draws the fresh noise of ancestral and SDE samplers. */
  noiseSource: NoiseSource;
  shape: readonly number[];
  hooks?: SamplingHooks;
}

/**
 * Walks `x` down `sigmas` with `sampler` (a ComfyUI name or a Sampler), calling the hooks around every step.
 * The building block for custom sigmas (ComfyUI's SamplerCustom); `sample` is KSampler on top of it.
 */
export async function runSampler(sampler: string | Sampler, x: Float32Array, sigmas: Float64Array, options: RunOptions): Promise<Float32Array> {
  const { denoiser, noiseSource, shape, hooks = {} } = options;
  const noise = () => {
    const drawn = noiseSource(shape);
    if (drawn.length !== x.length) throw new Error(`noise source returned ${drawn.length} values for a latent of ${x.length}`);
    return drawn;
  };
  const step = (typeof sampler === 'string' ? getSampler(sampler) : sampler)({ sigmas, denoise: denoiser, noise });
  const total = sigmas.length - 1;
  for (let index = 0; index < total; index++) {
    const [sigma, sigmaNext] = [sigmas[index], sigmas[index + 1]];
    await hooks.beforeStep?.(index, total, sigma);
    const result = await step(index, x);
    await hooks.onStep?.({ index, total, sigma, sigmaNext, x, denoised: result.denoised });
    x = result.x;
  }
  return x;
}

export interface SampleOptions extends SigmaPlan, RunOptions {
  /** Add the initial noise (KSamplerAdvanced add_noise); default true. */
  addNoise?: boolean;
  /** The starting latent in the model's latent space (zeros for txt2img), shaped `shape`. */
  latent: Float32Array;
  /** The initial standard-normal noise, drawn by the caller from the seed. */
  noise: Float32Array;
  modelSampling: DiscreteModelSampling;
}

/** ComfyUI's KSampler / KSamplerAdvanced on an eps or v model: returns the sampled latent. */
export async function sample(options: SampleOptions): Promise<Float32Array> {
  const { latent, shape, modelSampling, addNoise = true } = options;
  const count = shape.reduce((a, b) => a * b, 1);
  if (latent.length !== count || options.noise.length !== count) {
    throw new Error(`latent (${latent.length}) and noise (${options.noise.length}) must both hold ${count} values for shape [${shape.join(', ')}]`);
  }
  const sampler = getSampler(options.sampler);
  const sigmas = ksamplerSigmas(modelSampling, options);
  if (sigmas.length === 0) return latent.slice();
  const noise = addNoise ? options.noise : new Float32Array(count);
  const x = modelSampling.noiseScaling(sigmas[0], noise, latent, modelSampling.isMaxDenoise(sigmas[0]));
  return runSampler(sampler, x, sigmas, options);
}
