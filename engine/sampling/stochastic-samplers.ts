import { logMidpoint } from './ode-samplers.ts';
import type { Sampler } from './types.ts';
import { combine, derivative } from './vector.ts';

/**
 * Samplers that add fresh noise as they go (comfy/k_diffusion/sampling.py), with ComfyUI's defaults
 * eta = 1 and s_noise = 1. Each draws noise exactly where ComfyUI's sampler calls its noise sampler.
 */

/**
 * Splits a step to `sigmaNext` into a deterministic step down to `down` and fresh noise of size `up`
 * (down² + up² = sigmaNext²), the ancestral step of k-diffusion.
 */
function ancestralStep(sigma: number, sigmaNext: number): { down: number; up: number } {
  const up = Math.min(sigmaNext, Math.sqrt((sigmaNext ** 2 * (sigma ** 2 - sigmaNext ** 2)) / sigma ** 2));
  return { down: Math.sqrt(sigmaNext ** 2 - up ** 2), up };
}

export const eulerAncestral: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const sigma = sigmas[i];
  const denoised = await denoise(x, sigma);
  const { down, up } = ancestralStep(sigma, sigmas[i + 1]);
  if (down === 0) return { x: denoised, denoised };
  return { x: combine([1, x], [down - sigma, derivative(x, sigma, denoised)], [up, noise()]), denoised };
};

export const dpm2Ancestral: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const sigma = sigmas[i];
  const denoised = await denoise(x, sigma);
  const { down, up } = ancestralStep(sigma, sigmas[i + 1]);
  const d = derivative(x, sigma, denoised);
  if (down === 0) return { x: combine([1, x], [down - sigma, d]), denoised };
  const sigmaMid = logMidpoint(sigma, down);
  const xMid = combine([1, x], [sigmaMid - sigma, d]);
  const dMid = derivative(xMid, sigmaMid, await denoise(xMid, sigmaMid));
  return { x: combine([1, x], [down - sigma, dMid], [up, noise()]), denoised };
};

/** DPM-Solver++(2S) single-step second order towards the ancestral `down`, then fresh noise. */
export const dpmpp2sAncestral: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
  const denoised = await denoise(x, sigma);
  const { down, up } = ancestralStep(sigma, sigmaNext);
  let next: Float32Array;
  if (down === 0) {
    next = combine([1, x], [down - sigma, derivative(x, sigma, denoised)]);
  } else {
    const h = Math.log(sigma) - Math.log(down);
    const sigmaMid = sigma * Math.exp(-h / 2);
    const xMid = combine([sigmaMid / sigma, x], [-Math.expm1(-h / 2), denoised]);
    const denoisedMid = await denoise(xMid, sigmaMid);
    next = combine([down / sigma, x], [-Math.expm1(-h), denoisedMid]);
  }
  return { x: sigmaNext > 0 ? combine([1, next], [up, noise()]) : next, denoised };
};

/**
 * Noise for two overlapping intervals [sigmaMid, sigma] ⊂ [sigmaNext, sigma] of one Brownian path in sigma,
 * each normalised to unit variance. ComfyUI samples that path with torchsde's BrownianTree; this draws the
 * same joint distribution from two fresh normals.
 */
function brownianIncrements(noise: () => Float32Array, sigma: number, sigmaMid: number, sigmaNext: number) {
  const first = noise();
  const rest = noise();
  const span = Math.sqrt(sigma - sigmaNext);
  const whole = combine([Math.sqrt(sigma - sigmaMid) / span, first], [Math.sqrt(sigmaMid - sigmaNext) / span, rest]);
  return { first, whole };
}

/** DPM-Solver++ (stochastic), r = 1/2: two stochastic half steps in lambda per step. */
export const dpmppSde: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
  const denoised = await denoise(x, sigma);
  if (sigmaNext === 0) return { x: denoised, denoised };
  const lambda = -Math.log(sigma);
  const sigmaMid = logMidpoint(sigma, sigmaNext);
  const increments = brownianIncrements(noise, sigma, sigmaMid, sigmaNext);

  const toMid = ancestralStep(sigma, sigmaMid);
  const hMid = -Math.log(toMid.down) - lambda;
  const xMid = combine([Math.exp(-hMid), x], [-Math.expm1(-hMid), denoised], [toMid.up, increments.first]);
  const denoisedMid = await denoise(xMid, sigmaMid);

  const toNext = ancestralStep(sigma, sigmaNext);
  const h = -Math.log(toNext.down) - lambda;
  return { x: combine([Math.exp(-h), x], [-Math.expm1(-h), denoisedMid], [toNext.up, increments.whole]), denoised };
};

/**
 * DPM-Solver++(2M) SDE: the multistep solver with noise injected each step; `midpoint` and `heun` differ
 * only in how the previous prediction corrects the current one.
 */
function dpmpp2mSde(solver: 'midpoint' | 'heun'): Sampler {
  return ({ sigmas, denoise, noise }) => {
    let previous: Float32Array | undefined;
    let hPrevious = 0;
    return async (i, x) => {
      const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
      const denoised = await denoise(x, sigma);
      if (sigmaNext === 0) return { x: denoised, denoised };
      const h = Math.log(sigma) - Math.log(sigmaNext);
      const decay = -Math.expm1(-2 * h);
      const terms: [number, Float32Array][] = [[(sigmaNext / sigma) * Math.exp(-h), x], [decay, denoised]];
      if (previous) {
        const r = hPrevious / h;
        const weight = solver === 'heun' ? (decay / (-2 * h) + 1) / r : (0.5 * decay) / r;
        terms.push([weight, denoised], [-weight, previous]);
      }
      terms.push([sigmaNext * Math.sqrt(decay), noise()]);
      previous = denoised;
      hPrevious = h;
      return { x: combine(...terms), denoised };
    };
  };
}

export const dpmpp2mSdeMidpoint = dpmpp2mSde('midpoint');
export const dpmpp2mSdeHeun = dpmpp2mSde('heun');

interface PastStep {
  readonly denoised: Float32Array;
  readonly h: number;
}

/** DPM-Solver++(3M) SDE: like 2M SDE with a second-order correction from the two previous predictions. */
export const dpmpp3mSde: Sampler = ({ sigmas, denoise, noise }) => {
  let last: PastStep | undefined;
  let beforeLast: PastStep | undefined;
  return async (i, x) => {
    const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
    const denoised = await denoise(x, sigma);
    if (sigmaNext === 0) return { x: denoised, denoised };
    const h = Math.log(sigma) - Math.log(sigmaNext);
    const hEta = 2 * h;
    const phi2 = Math.expm1(-hEta) / hEta + 1;
    let next = combine([(sigmaNext / sigma) * Math.exp(-h), x], [-Math.expm1(-hEta), denoised]);
    if (last && beforeLast) {
      const [r0, r1] = [last.h / h, beforeLast.h / h];
      const d10 = combine([1 / r0, denoised], [-1 / r0, last.denoised]);
      const d11 = combine([1 / r1, last.denoised], [-1 / r1, beforeLast.denoised]);
      const d1 = combine([1 + r0 / (r0 + r1), d10], [-r0 / (r0 + r1), d11]);
      const d2 = combine([1 / (r0 + r1), d10], [-1 / (r0 + r1), d11]);
      next = combine([1, next], [phi2, d1], [-(phi2 / hEta - 0.5), d2]);
    } else if (last) {
      const r = last.h / h;
      next = combine([1, next], [phi2 / r, denoised], [-phi2 / r, last.denoised]);
    }
    beforeLast = last;
    last = { denoised, h };
    return { x: combine([1, next], [sigmaNext * Math.sqrt(-Math.expm1(-2 * h)), noise()]), denoised };
  };
};

/** The DDPM ancestral step (Ho et al. 2020), taken in the variance-preserving frame. */
export const ddpm: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
  const denoised = await denoise(x, sigma);
  const alphaCumprod = 1 / (sigma * sigma + 1);
  const alphaCumprodNext = 1 / (sigmaNext * sigmaNext + 1);
  const alpha = alphaCumprod / alphaCumprodNext;
  // mean = (x_vp − (1 − alpha)·eps / sqrt(1 − ᾱ)) / sqrt(alpha), with x_vp = x·sqrt(ᾱ) and eps = (x − denoised)/sigma.
  const epsWeight = (1 - alpha) / Math.sqrt(1 - alphaCumprod) / sigma;
  const terms: [number, Float32Array][] = [
    [(Math.sqrt(alphaCumprod) - epsWeight) / Math.sqrt(alpha), x],
    [epsWeight / Math.sqrt(alpha), denoised],
  ];
  if (sigmaNext > 0) {
    terms.push([Math.sqrt(((1 - alpha) * (1 - alphaCumprodNext)) / (1 - alphaCumprod)), noise()]);
  }
  const scaleBack = sigmaNext !== 0 ? Math.sqrt(1 + sigmaNext * sigmaNext) : 1;
  return { x: combine(...terms.map(([c, t]) => [c * scaleBack, t] as const)), denoised };
};

/** Latent consistency sampling: jump to the prediction, then re-noise it to the next sigma. */
export const lcm: Sampler = ({ sigmas, denoise, noise }) => async (i, x) => {
  const denoised = await denoise(x, sigmas[i]);
  const sigmaNext = sigmas[i + 1];
  return { x: sigmaNext > 0 ? combine([1, denoised], [sigmaNext, noise()]) : denoised, denoised };
};
