import { InvalidInputError } from '../errors.ts';
import type { DiscreteModelSampling } from './model-sampling.ts';
import { DISCARD_PENULTIMATE_SIGMA_SAMPLERS, parseSamplerName } from './samplers.ts';
import { computeSigmas } from './schedulers.ts';

export interface SigmaPlan {
  sampler: string;
  scheduler: string;
  steps: number;
  /** Fraction of the schedule to run, 0..1 (img2img strength); default 1. */
  denoise?: number;
  /** KSamplerAdvanced's start_at_step / end_at_step. */
  startStep?: number;
  endStep?: number;
  /** When a run ends early, keep its last sigma instead of forcing it to 0 (default false). */
  returnWithLeftoverNoise?: boolean;
}

function requireWholeNumber(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidInputError(`${name} must be a whole number of at least ${min}, got ${value}.`);
  }
}

/**
 * The sigmas ComfyUI's KSampler / KSamplerAdvanced run for these settings. Empty when ComfyUI returns the
 * input latent untouched (denoise 0, or a start step at or past the end).
 */
export function ksamplerSigmas(modelSampling: DiscreteModelSampling, plan: SigmaPlan): Float64Array {
  const { scheduler, steps, denoise = 1, startStep, endStep, returnWithLeftoverNoise = false } = plan;
  const sampler = parseSamplerName(plan.sampler);
  requireWholeNumber('steps', steps, 1);
  if (!(denoise >= 0 && denoise <= 1)) throw new InvalidInputError(`denoise must be between 0 and 1, got ${denoise}.`);
  if (startStep !== undefined) requireWholeNumber('start_at_step', startStep, 0);
  if (endStep !== undefined) requireWholeNumber('end_at_step', endStep, 0);

  const schedule = (n: number) => {
    if (!DISCARD_PENULTIMATE_SIGMA_SAMPLERS.has(sampler)) return computeSigmas(scheduler, modelSampling, n);
    const sigmas = computeSigmas(scheduler, modelSampling, n + 1);
    return Float64Array.of(...sigmas.subarray(0, -2), sigmas[sigmas.length - 1]);
  };

  let sigmas: Float64Array;
  if (denoise > 0.9999) sigmas = schedule(steps);
  else if (denoise <= 0) return new Float64Array(0);
  else {
    // A partial denoise runs the tail of a longer schedule.
    const full = schedule(Math.trunc(steps / denoise));
    sigmas = full.slice(Math.max(full.length - (steps + 1), 0));
  }

  if (endStep !== undefined && endStep < sigmas.length - 1) {
    sigmas = sigmas.slice(0, endStep + 1);
    if (!returnWithLeftoverNoise) sigmas[sigmas.length - 1] = 0;
  }
  if (startStep !== undefined) {
    if (startStep >= sigmas.length - 1) return new Float64Array(0);
    sigmas = sigmas.slice(startStep);
  }
  return sigmas;
}
