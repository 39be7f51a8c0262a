/** ComfyUI-named samplers and schedulers over a caller-supplied denoiser (see docs in each module). */
export { cfgDenoiser, type GuidedModel, type GuidedOutput } from './cfg.ts';
export { ksamplerSigmas, type SigmaPlan } from './ksampler-sigmas.ts';
export { DiscreteModelSampling, type DiscreteScheduleOptions, type Prediction } from './model-sampling.ts';
export { runSampler, sample, type RunOptions, type SampleOptions } from './sample.ts';
export {
  DISCARD_PENULTIMATE_SIGMA_SAMPLERS,
  getSampler,
  isSamplerName,
  SAMPLER_NAMES,
  type SamplerName,
} from './samplers.ts';
export { computeSigmas, isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from './schedulers.ts';
export type { Denoiser, NoiseSource, Sampler, SamplerRun, SamplerStep, SamplingHooks, StepInfo, StepResult } from './types.ts';
