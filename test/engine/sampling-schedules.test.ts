import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../engine/errors.ts';
import { betaQuantile, incompleteBeta } from '../../engine/sampling/beta-quantile.ts';
import {
  computeSigmas,
  DiscreteModelSampling,
  ksamplerSigmas,
  SAMPLER_NAMES,
  SCHEDULER_NAMES,
} from '../../engine/sampling/index.ts';

const ms = new DiscreteModelSampling();
const sigmaAt = (t: number) => ms.sigmas[t];
const f32 = (values: number[]) => values.map(Math.fround);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(relative * Math.abs(expected[i]) + 1e-12);
  }
}

describe('DiscreteModelSampling', () => {
  it('builds the scaled-linear DDPM schedule of SD1/SD2/SDXL', () => {
    // beta_0 = 0.00085, so sigma_0 = sqrt(beta_0 / (1 - beta_0)).
    expect(ms.sigmaMin).toBeCloseTo(Math.sqrt(0.00085 / 0.99915), 7);
    // sqrt(beta_1) is one 999th of the way from sqrt(0.00085) to sqrt(0.012).
    const beta1 = (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999) ** 2;
    expect(ms.alphasCumprod[1]).toBeCloseTo((1 - 0.00085) * (1 - beta1), 15);
    // The well-known SD sigma range, as printed by k-diffusion and A1111.
    expect(ms.sigmaMax).toBeCloseTo(14.6146, 4);
    expect(ms.sigmas.length).toBe(1000);
    for (let t = 1; t < 1000; t++) expect(ms.sigmas[t]).toBeGreaterThan(ms.sigmas[t - 1]);
  });

  it('maps sigmas to the nearest timestep and timesteps to log-interpolated sigmas', () => {
    for (const t of [0, 1, 250, 499, 998, 999]) expect(ms.timestep(ms.sigma(t))).toBe(t);
    expect(ms.sigma(499.5)).toBeCloseTo(Math.sqrt(sigmaAt(499) * sigmaAt(500)), 5);
    expect(ms.sigma(10.25)).toBeCloseTo(sigmaAt(10) ** 0.75 * sigmaAt(11) ** 0.25, 6);
    expect(ms.sigma(-5)).toBeCloseTo(ms.sigmaMin, 7);
    expect(ms.sigma(2000)).toBeCloseTo(ms.sigmaMax, 5);
    // Just past the geometric midpoint of two sigmas, the upper timestep is nearer.
    expect(ms.timestep(Math.sqrt(sigmaAt(600) * sigmaAt(601)) * 1.0001)).toBe(601);
    expect(ms.timestep(Math.sqrt(sigmaAt(600) * sigmaAt(601)) * 0.9999)).toBe(600);
  });

  it('recovers x0 from an eps prediction and from a v prediction', () => {
    const sigma = 3.7;
    const x0 = Float32Array.from([0.25, -1.5, 2]);
    const eps = Float32Array.from([1.1, 0.3, -0.8]);
    const x = x0.map((v, k) => v + sigma * eps[k]);
    const epsModel = new DiscreteModelSampling({ prediction: 'eps' });
    expectClose(epsModel.calculateDenoised(sigma, eps, x), x0, 1e-5);

    // In the variance-preserving frame x_vp = alpha·x0 + sigma_vp·eps and v = alpha·eps − sigma_vp·x0.
    const alpha = 1 / Math.sqrt(1 + sigma ** 2);
    const sigmaVp = sigma / Math.sqrt(1 + sigma ** 2);
    const v = x0.map((v0, k) => alpha * eps[k] - sigmaVp * v0);
    const vModel = new DiscreteModelSampling({ prediction: 'v' });
    expectClose(vModel.calculateDenoised(sigma, v, x), x0, 1e-5);
    expectClose(vModel.calculateInput(sigma, x), x.map((xv) => xv * alpha), 1e-6);
    expect(vModel.inputScale(sigma)).toBeCloseTo(alpha, 12);
  });

  it('scales the initial noise by sigma, or by sqrt(1 + sigma²) at maximum denoise', () => {
    const noise = Float32Array.from([1, -2]);
    const latent = Float32Array.from([0.5, 0.25]);
    expectClose(ms.noiseScaling(2, noise, latent, false), [2.5, -3.75]);
    expectClose(ms.noiseScaling(2, noise, latent, true), [0.5 + Math.sqrt(5), 0.25 - 2 * Math.sqrt(5)]);
    expect(ms.isMaxDenoise(ms.sigmaMax)).toBe(true);
    expect(ms.isMaxDenoise(ms.sigmaMax * (1 - 5e-6))).toBe(true);
    expect(ms.isMaxDenoise(ms.sigmaMax * (1 - 5e-5))).toBe(false);
    expect(ms.isMaxDenoise(20)).toBe(true);
  });
});

describe('schedulers', () => {
  it('lists ComfyUI scheduler names in ComfyUI order', () => {
    expect(SCHEDULER_NAMES).toEqual(['simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal']);
  });

  it('simple: every (1000 / steps)-th sigma from the top', () => {
    expect(Array.from(computeSigmas('simple', ms, 4))).toEqual(f32([sigmaAt(999), sigmaAt(749), sigmaAt(499), sigmaAt(249), 0]));
    // 1000 / 3 = 333.3…: offsets 0, 333, 666.
    expect(Array.from(computeSigmas('simple', ms, 3))).toEqual(f32([sigmaAt(999), sigmaAt(666), sigmaAt(333), 0]));
  });

  it('normal: timesteps evenly spaced from 999 to 0, fractional ones interpolated in log-sigma', () => {
    expectClose(computeSigmas('normal', ms, 4), [sigmaAt(999), sigmaAt(666), sigmaAt(333), sigmaAt(0), 0]);
    expectClose(computeSigmas('normal', ms, 3), [sigmaAt(999), Math.sqrt(sigmaAt(499) * sigmaAt(500)), sigmaAt(0), 0]);
  });

  it('sgm_uniform: steps + 1 even timesteps with the last dropped', () => {
    expectClose(computeSigmas('sgm_uniform', ms, 3), [sigmaAt(999), sigmaAt(666), sigmaAt(333), 0]);
    expectClose(computeSigmas('sgm_uniform', ms, 2), [sigmaAt(999), Math.sqrt(sigmaAt(499) * sigmaAt(500)), 0]);
  });

  it('ddim_uniform: every (1000 div steps)-th sigma from timestep 1, possibly more than steps', () => {
    expect(Array.from(computeSigmas('ddim_uniform', ms, 4))).toEqual(f32([sigmaAt(751), sigmaAt(501), sigmaAt(251), sigmaAt(1), 0]));
    // 1000 div 7 = 142 fits eight times below 1000: ComfyUI then runs 8 steps.
    const seven = computeSigmas('ddim_uniform', ms, 7);
    expect(Array.from(seven)).toEqual(f32([...[995, 853, 711, 569, 427, 285, 143, 1].map(sigmaAt), 0]));
  });

  it('karras: evenly spaced in sigma^(1/7) from sigma_max to sigma_min', () => {
    const steps = 6;
    const sigmas = computeSigmas('karras', ms, steps);
    expect(sigmas.length).toBe(steps + 1);
    expect(sigmas[0]).toBeCloseTo(ms.sigmaMax, 4);
    expect(sigmas[steps - 1]).toBeCloseTo(ms.sigmaMin, 7);
    expect(sigmas[steps]).toBe(0);
    const roots = Array.from(sigmas.subarray(0, steps), (s) => s ** (1 / 7));
    for (let i = 1; i < steps; i++) expect(roots[i] - roots[i - 1]).toBeCloseTo((roots[steps - 1] - roots[0]) / (steps - 1), 6);
  });

  it('exponential: a constant ratio between consecutive sigmas', () => {
    const steps = 5;
    const sigmas = computeSigmas('exponential', ms, steps);
    const ratio = (ms.sigmaMin / ms.sigmaMax) ** (1 / (steps - 1));
    expectClose(sigmas, [...Array.from({ length: steps }, (_, i) => ms.sigmaMax * ratio ** i), 0]);
  });

  it('beta: timesteps at the Beta(0.6, 0.6) quantiles', () => {
    // rint(999 · ppf(1 − i/10)) from scipy.stats.beta.ppf.
    const timesteps = [999, 959, 876, 765, 637, 500, 362, 234, 123, 40];
    expect(Array.from(computeSigmas('beta', ms, 10))).toEqual(f32([...timesteps.map(sigmaAt), 0]));
  });

  it('linear_quadratic: linear then quadratic fractions of sigma_max', () => {
    // steps 4: fractions 0, 0.0125 (linear), 0.025, 0.275 (quadratic), then 1, derived by hand.
    expectClose(computeSigmas('linear_quadratic', ms, 4), [1, 0.9875, 0.975, 0.725, 0].map((f) => f * ms.sigmaMax));
    expectClose(computeSigmas('linear_quadratic', ms, 1), [ms.sigmaMax, 0]);
  });

  it('kl_optimal: evenly spaced in arctan(sigma)', () => {
    const middle = Math.tan((Math.atan(ms.sigmaMin) + Math.atan(ms.sigmaMax)) / 2);
    expectClose(computeSigmas('kl_optimal', ms, 3), [ms.sigmaMax, middle, ms.sigmaMin, 0]);
  });

  it('every scheduler descends and ends in 0', () => {
    for (const name of SCHEDULER_NAMES) {
      for (const steps of [1, 2, 9, 30]) {
        const sigmas = computeSigmas(name, ms, steps);
        expect(sigmas[sigmas.length - 1]).toBe(0);
        for (let i = 1; i < sigmas.length; i++) expect(sigmas[i]).toBeLessThan(sigmas[i - 1]);
      }
    }
  });

  it('refuses unknown names and bad step counts, listing the valid names', () => {
    expect(() => computeSigmas('karas', ms, 10)).toThrow(InvalidInputError);
    expect(() => computeSigmas('karas', ms, 10)).toThrow(/karras.*exponential/);
    expect(() => computeSigmas('karras', ms, 0)).toThrow(InvalidInputError);
    expect(() => computeSigmas('karras', ms, 2.5)).toThrow(InvalidInputError);
  });
});

describe('Beta distribution quantiles', () => {
  it('inverts closed-form distribution functions', () => {
    // Beta(1/2, 1/2) is the arcsine distribution: F(x) = (2/π)·asin(sqrt(x)).
    for (const q of [0.01, 0.3, 0.5, 0.77, 0.999]) expect(betaQuantile(q, 0.5, 0.5)).toBeCloseTo(Math.sin((Math.PI * q) / 2) ** 2, 12);
    // Beta(1, b): F(x) = 1 − (1 − x)^b.
    for (const q of [0.05, 0.5, 0.95]) expect(betaQuantile(q, 1, 3)).toBeCloseTo(1 - (1 - q) ** (1 / 3), 12);
    expect(incompleteBeta(0.3, 2, 3)).toBeCloseTo(0.3483, 12);
  });

  it('matches scipy.stats.beta.ppf at the scheduler parameters', () => {
    const reference: [number, number][] = [
      [0.9, 0.9604155944112192],
      [0.75, 0.824319621347305],
      [0.1, 0.03958440558878085],
      [0.001, 1.855873851745199e-5],
    ];
    for (const [q, x] of reference) expect(betaQuantile(q, 0.6, 0.6) / x).toBeCloseTo(1, 12);
    expect(betaQuantile(0.5, 0.6, 0.6)).toBe(0.5);
  });
});

describe('ksamplerSigmas (KSampler / KSamplerAdvanced)', () => {
  const plan = { sampler: 'euler', scheduler: 'karras', steps: 10 };

  it('is the plain schedule by default', () => {
    expect(ksamplerSigmas(ms, plan)).toEqual(computeSigmas('karras', ms, 10));
  });

  it('computes one more sigma and drops the penultimate for dpm_2, dpm_2_ancestral, uni_pc, uni_pc_bh2', () => {
    const longer = Array.from(computeSigmas('karras', ms, 6));
    const expected = [...longer.slice(0, 5), 0];
    for (const sampler of ['dpm_2', 'dpm_2_ancestral', 'uni_pc', 'uni_pc_bh2']) {
      expect(Array.from(ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps: 5 }))).toEqual(expected);
    }
    expect(Array.from(ksamplerSigmas(ms, { sampler: 'heun', scheduler: 'karras', steps: 5 }))).toEqual(Array.from(computeSigmas('karras', ms, 5)));
  });

  it('denoise < 1 keeps the last steps + 1 sigmas of int(steps / denoise) steps', () => {
    expect(Array.from(ksamplerSigmas(ms, { ...plan, scheduler: 'normal', denoise: 0.5 }))).toEqual(Array.from(computeSigmas('normal', ms, 20).slice(10)));
    // 10 / 0.35 = 28.57… is truncated to 28 steps.
    expect(Array.from(ksamplerSigmas(ms, { ...plan, denoise: 0.35 }))).toEqual(Array.from(computeSigmas('karras', ms, 28).slice(18)));
    // The penultimate sigma is dropped from the longer schedule, before the tail is taken.
    const longer = Array.from(computeSigmas('karras', ms, 21));
    const dropped = [...longer.slice(0, 20), 0];
    expect(Array.from(ksamplerSigmas(ms, { ...plan, sampler: 'dpm_2', denoise: 0.5 }))).toEqual(dropped.slice(10));
    expect(ksamplerSigmas(ms, { ...plan, denoise: 0 }).length).toBe(0);
    expect(ksamplerSigmas(ms, { ...plan, denoise: 0.99995 })).toEqual(computeSigmas('karras', ms, 10));
  });

  it('slices start_at_step / end_at_step and forces the last sigma to 0 unless noise is left over', () => {
    const full = Array.from(computeSigmas('karras', ms, 10));
    expect(Array.from(ksamplerSigmas(ms, { ...plan, startStep: 3, endStep: 7 }))).toEqual([...full.slice(3, 7), 0]);
    expect(Array.from(ksamplerSigmas(ms, { ...plan, startStep: 3, endStep: 7, returnWithLeftoverNoise: true }))).toEqual(full.slice(3, 8));
    expect(Array.from(ksamplerSigmas(ms, { ...plan, startStep: 0, endStep: 10000 }))).toEqual(full);
    expect(Array.from(ksamplerSigmas(ms, { ...plan, endStep: 10, returnWithLeftoverNoise: true }))).toEqual(full);
    // A start at or past the last step leaves nothing to run.
    expect(ksamplerSigmas(ms, { ...plan, startStep: 10 }).length).toBe(0);
    expect(ksamplerSigmas(ms, { ...plan, startStep: 4, endStep: 4 }).length).toBe(0);
  });

  it('refuses unknown samplers and out-of-range settings', () => {
    expect(() => ksamplerSigmas(ms, { ...plan, sampler: 'eulerr' })).toThrow(InvalidInputError);
    expect(() => ksamplerSigmas(ms, { ...plan, sampler: 'eulerr' })).toThrow(new RegExp(SAMPLER_NAMES.slice(0, 3).join(', ')));
    expect(() => ksamplerSigmas(ms, { ...plan, denoise: 1.5 })).toThrow(InvalidInputError);
    expect(() => ksamplerSigmas(ms, { ...plan, startStep: -1 })).toThrow(InvalidInputError);
    expect(() => ksamplerSigmas(ms, { ...plan, steps: 0 })).toThrow(InvalidInputError);
  });
});
