/**
 * The contracts between the sampling loop, the samplers and the caller. Latents are row-major Float32Arrays;
 * sigmas are the k-diffusion noise levels (x = x0 + sigma·noise).
 */

/** The model as the samplers see it: the denoised (x0) prediction for latent `x` at noise level `sigma`. */
export type Denoiser = (x: Float32Array, sigma: number) => Promise<Float32Array>;

/** Fresh standard-normal noise of `shape`, from the caller's seeded generator. */
export type NoiseSource = (shape: readonly number[]) => Float32Array;

/** What `onStep` is told after each step. */
export interface StepInfo {
  /** 0-based step of this run (after KSamplerAdvanced's slicing, like ComfyUI's progress). */
  readonly index: number;
  readonly total: number;
  readonly sigma: number;
  readonly sigmaNext: number;
  /** The latent at `sigma`, the one `denoised` was predicted from. */
  readonly x: Float32Array;
  /** The x0 prediction at `sigma` (what previews show). */
  readonly denoised: Float32Array;
}

export interface SamplingHooks {
  /** Called once per step before its first model evaluation (per-step LoRA strengths are set here). */
  beforeStep?(index: number, total: number, sigma: number): void | Promise<void>;
  /** Called once per step after it; throwing stops sampling and the error propagates (interrupts). */
  onStep?(step: StepInfo): void | Promise<void>;
}

/** What a sampler is given for one run. */
export interface SamplerRun {
  readonly sigmas: Float64Array;
  readonly denoise: Denoiser;
  /** Standard-normal noise shaped like the latent; samplers draw it exactly where ComfyUI's do. */
  readonly noise: () => Float32Array;
}

export interface StepResult {
  /** The latent at sigmas[i + 1]. */
  readonly x: Float32Array;
  /** The x0 prediction made at sigmas[i]. */
  readonly denoised: Float32Array;
}

/** Advances the latent from sigmas[i] to sigmas[i + 1]; called for i = 0, 1, … in order. */
export type SamplerStep = (i: number, x: Float32Array) => Promise<StepResult>;

/** A sampler builds the step function (and the history it keeps) for one run. */
export type Sampler = (run: SamplerRun) => SamplerStep;
