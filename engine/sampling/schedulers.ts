import { InvalidInputError } from '../errors.ts';
import { betaQuantile } from './beta-quantile.ts';
import { linspace } from './linspace.ts';
import type { DiscreteModelSampling } from './model-sampling.ts';

/**
 * ComfyUI's schedulers (comfy/samplers.py): each turns a step count into the descending sigmas a sampler
 * walks, ending in 0. Most give steps + 1 sigmas; `ddim_uniform` and `beta` can give a few more or fewer,
 * exactly as ComfyUI does.
 */
type Scheduler = (modelSampling: DiscreteModelSampling, steps: number) => number[];

/** Every (1000 / steps)-th training sigma, counted down from the last. */
const simple: Scheduler = (ms, steps) => {
  const stride = ms.sigmas.length / steps;
  const sigmas = Array.from({ length: steps }, (_, i) => ms.sigmas[ms.sigmas.length - 1 - Math.floor(i * stride)]);
  return [...sigmas, 0];
};

/** Timesteps evenly spaced from the last to the first (fractional ones interpolated in log-sigma). */
function evenTimesteps(ms: DiscreteModelSampling, steps: number, sgm: boolean): number[] {
  const start = ms.timestep(ms.sigmaMax);
  const end = ms.timestep(ms.sigmaMin);
  // sgm_uniform spaces steps + 1 points and drops the last, so it never lands on the smallest sigma.
  const timesteps = sgm ? linspace(start, end, steps + 1).subarray(0, steps) : linspace(start, end, steps);
  return [...Array.from(timesteps, (t) => ms.sigma(t)), 0];
}

const normal: Scheduler = (ms, steps) => evenTimesteps(ms, steps, false);
const sgmUniform: Scheduler = (ms, steps) => evenTimesteps(ms, steps, true);

/** Karras et al. (2022): evenly spaced in sigma^(1/7). */
const karras: Scheduler = (ms, steps) => {
  const rho = 7;
  const maxInvRho = ms.sigmaMax ** (1 / rho);
  const minInvRho = ms.sigmaMin ** (1 / rho);
  return [...Array.from(linspace(0, 1, steps), (ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho), 0];
};

/** Evenly spaced in log-sigma. */
const exponential: Scheduler = (ms, steps) => [
  ...Array.from(linspace(Math.log(ms.sigmaMax), Math.log(ms.sigmaMin), steps), Math.exp),
  0,
];

/** DDIM's uniform timestep skipping: every (1000 div steps)-th sigma from timestep 1 upwards. */
const ddimUniform: Scheduler = (ms, steps) => {
  const stride = Math.max(Math.floor(ms.sigmas.length / steps), 1);
  const sigmas = [0];
  for (let t = 1; t < ms.sigmas.length; t += stride) sigmas.push(ms.sigmas[t]);
  return sigmas.reverse();
};

/** Timesteps at the quantiles of Beta(0.6, 0.6) (arXiv 2407.12173): denser at both ends of the schedule. */
const beta: Scheduler = (ms, steps) => {
  const lastTimestep = ms.sigmas.length - 1;
  const sigmas: number[] = [];
  let previous = -1;
  for (let i = 0; i < steps; i++) {
    const t = roundHalfToEven(betaQuantile(1 - i * (1 / steps), 0.6, 0.6) * lastTimestep);
    if (t !== previous) sigmas.push(ms.sigmas[t]);
    previous = t;
  }
  return [...sigmas, 0];
};

/** numpy.rint. */
function roundHalfToEven(v: number): number {
  const floor = Math.floor(v);
  const fraction = v - floor;
  if (fraction !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Mochi's schedule: linear for the first half of the steps, then quadratic, as fractions of sigma_max. */
const linearQuadratic: Scheduler = (ms, steps) => {
  if (steps === 1) return [ms.sigmaMax, 0];
  const thresholdNoise = 0.025;
  const linearSteps = Math.floor(steps / 2);
  const quadraticSteps = steps - linearSteps;
  const thresholdStepDiff = linearSteps - thresholdNoise * steps;
  const quadraticCoef = thresholdStepDiff / (linearSteps * quadraticSteps ** 2);
  const linearCoef = thresholdNoise / linearSteps - (2 * thresholdStepDiff) / quadraticSteps ** 2;
  const constant = quadraticCoef * linearSteps ** 2;
  const fractions: number[] = [];
  for (let i = 0; i < linearSteps; i++) fractions.push((i * thresholdNoise) / linearSteps);
  for (let i = linearSteps; i < steps; i++) fractions.push(quadraticCoef * i ** 2 + linearCoef * i + constant);
  fractions.push(1);
  // ComfyUI rounds the fractions to float32 before scaling by sigma_max.
  return fractions.map((f) => Math.fround(1 - f) * ms.sigmaMax);
};

/**
 * The KL-optimal schedule (A1111 PR 15608): evenly spaced in arctan(sigma). ComfyUI divides by steps − 1 and
 * yields NaN for a single step; this gives sigma_max then, the limit of the formula.
 */
const klOptimal: Scheduler = (ms, steps) => {
  const sigmas = Array.from({ length: steps }, (_, i) => {
    const w = steps === 1 ? 0 : i / (steps - 1);
    return Math.tan(w * Math.atan(ms.sigmaMin) + (1 - w) * Math.atan(ms.sigmaMax));
  });
  return [...sigmas, 0];
};

/** By ComfyUI name, in ComfyUI's order (the first is the combo default). */
const SCHEDULERS = {
  simple,
  sgm_uniform: sgmUniform,
  karras,
  exponential,
  ddim_uniform: ddimUniform,
  beta,
  normal,
  linear_quadratic: linearQuadratic,
  kl_optimal: klOptimal,
} satisfies Record<string, Scheduler>;

export type SchedulerName = keyof typeof SCHEDULERS;
export const SCHEDULER_NAMES = Object.keys(SCHEDULERS) as readonly SchedulerName[];

export function isSchedulerName(name: string): name is SchedulerName {
  return Object.hasOwn(SCHEDULERS, name);
}

/** The sigmas of `scheduler` for `steps` steps, rounded to float32 as ComfyUI's FloatTensor holds them. */
export function computeSigmas(scheduler: string, modelSampling: DiscreteModelSampling, steps: number): Float64Array {
  if (!isSchedulerName(scheduler)) {
    throw new InvalidInputError(`Unknown scheduler "${scheduler}". Valid schedulers: ${SCHEDULER_NAMES.join(', ')}.`);
  }
  if (!Number.isInteger(steps) || steps < 1) {
    throw new InvalidInputError(`steps must be a whole number of at least 1, got ${steps}.`);
  }
  return Float64Array.from(SCHEDULERS[scheduler](modelSampling, steps), Math.fround);
}
