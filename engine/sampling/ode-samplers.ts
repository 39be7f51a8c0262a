import type { Sampler } from './types.ts';
import { combine, derivative } from './vector.ts';

/**
 * Deterministic k-diffusion samplers (comfy/k_diffusion/sampling.py): each step integrates the probability-flow
 * ODE dx/dsigma = (x − denoised) / sigma from sigmas[i] to sigmas[i + 1].
 */

export const euler: Sampler = ({ sigmas, denoise }) => async (i, x) => {
  const denoised = await denoise(x, sigmas[i]);
  const d = derivative(x, sigmas[i], denoised);
  return { x: combine([1, x], [sigmas[i + 1] - sigmas[i], d]), denoised };
};

/** Heun's method (Karras et al. 2022, Algorithm 2); the last step to sigma 0 is a plain Euler step. */
export const heun: Sampler = ({ sigmas, denoise }) => async (i, x) => {
  const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
  const denoised = await denoise(x, sigma);
  const d = derivative(x, sigma, denoised);
  const dt = sigmaNext - sigma;
  const eulerX = combine([1, x], [dt, d]);
  if (sigmaNext === 0) return { x: eulerX, denoised };
  const dNext = derivative(eulerX, sigmaNext, await denoise(eulerX, sigmaNext));
  return { x: combine([1, x], [dt / 2, d], [dt / 2, dNext]), denoised };
};

/** Midpoint in log-sigma, where DPM-Solver-2 takes its second evaluation. */
export function logMidpoint(sigma: number, sigmaNext: number): number {
  const logSigma = Math.log(sigma);
  return Math.exp(logSigma + 0.5 * (Math.log(sigmaNext) - logSigma));
}

/** DPM-Solver-2 with the midpoint taken in log-sigma; the last step to sigma 0 is Euler. */
export const dpm2: Sampler = ({ sigmas, denoise }) => async (i, x) => {
  const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
  const denoised = await denoise(x, sigma);
  const d = derivative(x, sigma, denoised);
  if (sigmaNext === 0) return { x: combine([1, x], [sigmaNext - sigma, d]), denoised };
  const sigmaMid = logMidpoint(sigma, sigmaNext);
  const xMid = combine([1, x], [sigmaMid - sigma, d]);
  const dMid = derivative(xMid, sigmaMid, await denoise(xMid, sigmaMid));
  return { x: combine([1, x], [sigmaNext - sigma, dMid]), denoised };
};

const LMS_ORDER = 4;

/** Three-point Gauss–Legendre quadrature: exact for the cubic Lagrange polynomials LMS integrates. */
function integrate(f: (tau: number) => number, from: number, to: number): number {
  const half = (to - from) / 2;
  const mid = (to + from) / 2;
  const node = Math.sqrt(3 / 5);
  return half * ((5 / 9) * f(mid - half * node) + (8 / 9) * f(mid) + (5 / 9) * f(mid + half * node));
}

/** ∫ over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial of node i − j among nodes i, i−1, …, i−order+1. */
function lmsCoefficient(sigmas: Float64Array, order: number, i: number, j: number): number {
  const basis = (tau: number) => {
    let product = 1;
    for (let k = 0; k < order; k++) {
      if (k !== j) product *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
    }
    return product;
  };
  return integrate(basis, sigmas[i], sigmas[i + 1]);
}

/** Linear multistep (Adams–Bashforth in sigma, up to 4th order); the last step to sigma 0 returns denoised. */
export const lms: Sampler = ({ sigmas, denoise }) => {
  const derivatives: Float32Array[] = [];
  return async (i, x) => {
    const denoised = await denoise(x, sigmas[i]);
    derivatives.push(derivative(x, sigmas[i], denoised));
    if (derivatives.length > LMS_ORDER) derivatives.shift();
    if (sigmas[i + 1] === 0) return { x: denoised, denoised };
    const order = Math.min(i + 1, LMS_ORDER);
    const terms = Array.from({ length: order }, (_, j) => {
      return [lmsCoefficient(sigmas, order, i, j), derivatives[derivatives.length - 1 - j]] as const;
    });
    return { x: combine([1, x], ...terms), denoised };
  };
};

/**
 * DPM-Solver++(2M): a second-order exponential integrator in lambda = −log(sigma) that reuses the previous
 * step's prediction; first order on the first step and on the last step to sigma 0.
 */
export const dpmpp2m: Sampler = ({ sigmas, denoise }) => {
  let previous: Float32Array | undefined;
  return async (i, x) => {
    const [sigma, sigmaNext] = [sigmas[i], sigmas[i + 1]];
    const denoised = await denoise(x, sigma);
    const h = Math.log(sigma) - Math.log(sigmaNext);
    let target = denoised;
    if (previous && sigmaNext !== 0) {
      const r = (Math.log(sigmas[i - 1]) - Math.log(sigma)) / h;
      target = combine([1 + 1 / (2 * r), denoised], [-1 / (2 * r), previous]);
    }
    previous = denoised;
    return { x: combine([sigmaNext / sigma, x], [-Math.expm1(-h), target]), denoised };
  };
};
