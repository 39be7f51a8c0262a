import type { DiscreteModelSampling } from './model-sampling.ts';
import type { Denoiser } from './types.ts';

/** The network's raw outputs (eps or v) for the scaled input at `timestep`. */
export interface GuidedOutput {
  cond: Float32Array;
  /** Present when it was asked for. */
  uncond?: Float32Array;
}

/**
 * Runs the network on `input` (already scaled by c_in) at the integer `timestep`, with the positive prompt
 * and, when `withUncond`, the negative one too (typically one batch-2 run).
 */
export type GuidedModel = (input: Float32Array, timestep: number, withUncond: boolean) => Promise<GuidedOutput>;

/**
 * A Denoiser with classifier-free guidance as ComfyUI does it: uncond + (cond − uncond)·cfg on the x0
 * predictions. At cfg 1 the negative pass is skipped and its prediction taken as zero, like ComfyUI.
 */
export function cfgDenoiser(model: GuidedModel, modelSampling: DiscreteModelSampling, cfg: number): Denoiser {
  const withUncond = Math.abs(cfg - 1) > 1e-9 * Math.max(1, Math.abs(cfg));
  return async (x, sigma) => {
    const output = await model(modelSampling.calculateInput(sigma, x), modelSampling.timestep(sigma), withUncond);
    const cond = modelSampling.calculateDenoised(sigma, output.cond, x);
    if (!withUncond) return cond.map((v) => v * cfg);
    if (!output.uncond) throw new Error('the guided model did not return the negative prediction it was asked for');
    const uncond = modelSampling.calculateDenoised(sigma, output.uncond, x);
    return uncond.map((u, k) => u + (cond[k] - u) * cfg);
  };
}
