import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../../engine/errors.ts';
import {
  cfgDenoiser,
  computeSigmas,
  type Denoiser,
  DiscreteModelSampling,
  type GuidedModel,
  ksamplerSigmas,
  type NoiseSource,
  runSampler,
  sample,
  SAMPLER_NAMES,
  type StepInfo,
} from '../../engine/sampling/index.ts';

/**
 * The analytic problem: data distributed N(MU, S²) per element. Its exact denoiser is the posterior mean
 * D(x, sigma) = (S²·x + sigma²·MU) / (S² + sigma²), and the probability-flow ODE carries x from sigma_T to
 * sigma along x(sigma) = MU + (x_T − MU)·sqrt(S² + sigma²) / sqrt(S² + sigma_T²).
 */
const MU = 0.3;
const S = 0.5;
const exactDenoiser: Denoiser = async (x, sigma) => x.map((v) => (S * S * v + sigma * sigma * MU) / (S * S + sigma * sigma));
const odeSolution = (xT: number, sigmaT: number, sigma: number) => MU + ((xT - MU) * Math.sqrt(S * S + sigma * sigma)) / Math.sqrt(S * S + sigmaT * sigmaT);
const shrink = (sigma: number) => (S * S) / (S * S + sigma * sigma);

/** A seeded standard-normal source (mulberry32 + Box–Muller). */
function gaussian(seed: number): NoiseSource {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (shape) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < out.length; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
      const angle = 2 * Math.PI * uniform();
      out[i] = radius * Math.cos(angle);
      if (i + 1 < out.length) out[i + 1] = radius * Math.sin(angle);
    }
    return out;
  };
}

const noNoise: NoiseSource = () => {
  throw new Error('a deterministic sampler drew noise');
};

function meanAndVariance(values: Float32Array): { mean: number; variance: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, variance: values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length };
}

const ms = new DiscreteModelSampling();
const DETERMINISTIC = ['euler', 'heun', 'dpm_2', 'lms', 'dpmpp_2m', 'ddim', 'uni_pc', 'uni_pc_bh2'];
const STOCHASTIC = SAMPLER_NAMES.filter((name) => !DETERMINISTIC.includes(name));

describe('deterministic samplers on the analytic problem', () => {
  const zs = [-2, -0.5, 0.7, 1.9];

  /** Largest error against the ODE solution after walking `sigmas` from x_T = MU + z·sqrt(S² + sigma_T²). */
  async function odeError(sampler: string, sigmas: Float64Array): Promise<number> {
    const xT = Float32Array.from(zs, (z) => MU + z * Math.sqrt(S * S + sigmas[0] ** 2));
    const x = await runSampler(sampler, xT, sigmas, { denoiser: exactDenoiser, noiseSource: noNoise, shape: [zs.length] });
    const sigmaEnd = sampler.startsWith('uni_pc') && sigmas[sigmas.length - 1] === 0 ? Math.fround(0.001) : sigmas[sigmas.length - 1];
    return Math.max(...zs.map((_, k) => Math.abs(x[k] - odeSolution(xT[k], sigmas[0], sigmaEnd))));
  }

  /** Karras sigmas from sigma_max down to sigma_min without the final jump to 0, which every sampler special-cases. */
  const towardsSigmaMin = (steps: number) => computeSigmas('karras', ms, steps + 1).slice(0, -1);

  it.each(DETERMINISTIC)('%s converges to the ODE solution as steps grow', async (sampler) => {
    const [coarse, medium, fine] = [await odeError(sampler, towardsSigmaMin(10)), await odeError(sampler, towardsSigmaMin(20)), await odeError(sampler, towardsSigmaMin(40))];
    expect(medium).toBeLessThan(coarse);
    expect(fine).toBeLessThan(medium / 1.8);
    expect(fine).toBeLessThan(0.05);
  });

  it.each([
    ['euler', 1],
    ['heun', 2],
    ['dpm_2', 2],
    ['dpmpp_2m', 2],
  ] as const)('%s has order %i', async (sampler, order) => {
    const ratio = (await odeError(sampler, towardsSigmaMin(20))) / (await odeError(sampler, towardsSigmaMin(40)));
    expect(Math.log2(ratio)).toBeGreaterThan(order - 0.2);
    expect(Math.log2(ratio)).toBeLessThan(order + 0.2);
  });

  it('lms is at least third order', async () => {
    const ratio = (await odeError('lms', towardsSigmaMin(20))) / (await odeError('lms', towardsSigmaMin(40)));
    expect(Math.log2(ratio)).toBeGreaterThan(2.8);
  });

  it.each(DETERMINISTIC)('%s lands near the ODE solution at sigma 0 with a full karras schedule', async (sampler) => {
    const sigmas = ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps: 40 });
    // The last step to 0 from sigma_min is first order in every sampler: about sigma_min² / 2S² off.
    expect(await odeError(sampler, sigmas)).toBeLessThan(0.05);
  });

  it('ddim is Euler, as in ComfyUI', async () => {
    const sigmas = computeSigmas('ddim_uniform', ms, 10);
    const xT = Float32Array.from(zs, (z) => z * sigmas[0]);
    const options = { denoiser: exactDenoiser, noiseSource: noNoise, shape: [zs.length] };
    expect(await runSampler('ddim', xT, sigmas, options)).toEqual(await runSampler('euler', xT, sigmas, options));
  });

  it.each(['uni_pc', 'uni_pc_bh2'])('%s is high order once its uncorrected last step is made negligible', async (sampler) => {
    const logUniform = (steps: number) => {
      const sigmas = Array.from({ length: steps }, (_, i) => 10 * 0.01 ** (i / (steps - 1)));
      return Float64Array.from([...sigmas, sigmas[steps - 1] * 0.999]);
    };
    const [coarse, medium, fine] = [await odeError(sampler, logUniform(8)), await odeError(sampler, logUniform(16)), await odeError(sampler, logUniform(32))];
    expect(Math.log2(coarse / medium)).toBeGreaterThan(3.5);
    expect(Math.log2(medium / fine)).toBeGreaterThan(3.5);
  });

  it.each([
    ['uni_pc', (h: number) => -h],
    ['uni_pc_bh2', (h: number) => Math.expm1(-h)],
  ] as const)('%s over two steps: a DDIM prediction, one UniC-1 correction with its B(h), a DDIM step', async (sampler, bOfH) => {
    const sigmas = Float64Array.from([5, 1, 0.2]);
    const x0 = Float32Array.from([4, -7]);
    const out = await runSampler(sampler, x0, sigmas, { denoiser: exactDenoiser, noiseSource: noNoise, shape: [2] });
    const ddim = (x: number, m: number, from: number, to: number) => (to / from) * x + (1 - to / from) * m;
    for (let k = 0; k < 2; k++) {
      const m0 = (await exactDenoiser(x0, 5))[k];
      const predicted = ddim(x0[k], m0, 5, 1);
      const m1 = (await exactDenoiser(Float32Array.of(predicted), 1))[0];
      const corrected = predicted - bOfH(Math.log(5)) * 0.5 * (m1 - m0);
      expect(out[k]).toBeCloseTo(ddim(corrected, m1, 1, 0.2), 5);
    }
  });

  it('uni_pc given a single step only rescales the latent, as ComfyUI does', async () => {
    const sigmas = ksamplerSigmas(ms, { sampler: 'uni_pc', scheduler: 'karras', steps: 1 });
    const x = Float32Array.from([10, -20]);
    const out = await runSampler('uni_pc', x, sigmas, { denoiser: exactDenoiser, noiseSource: noNoise, shape: [2] });
    const scale = Math.sqrt((1 + Math.fround(0.001) ** 2) / (1 + sigmas[0] ** 2));
    expect(out[0]).toBeCloseTo(10 * scale, 5);
    expect(out[1]).toBeCloseTo(-20 * scale, 5);
  });
});

describe('stochastic samplers on the analytic problem', () => {
  const shape = [1, 4, 50, 100];

  /** Samples from the exact marginal at sigmas[0], so an exact solver would return N(MU, S²). */
  async function sampleFromMarginal(sampler: string, sigmas: Float64Array, seed = 7) {
    const source = gaussian(seed);
    const xT = source(shape).map((z) => MU + z * Math.sqrt(S * S + sigmas[0] ** 2));
    let draws = 0;
    const noiseSource: NoiseSource = (drawShape) => {
      expect(drawShape).toEqual(shape);
      draws++;
      return source(drawShape);
    };
    const x = await runSampler(sampler, xT, sigmas, { denoiser: exactDenoiser, noiseSource, shape });
    return { ...meanAndVariance(x), draws };
  }

  const converging = STOCHASTIC.filter((name) => !['lcm', 'euler_ancestral', 'ddpm'].includes(name));

  it.each(converging)('%s reaches the data mean and variance', async (sampler) => {
    const { mean, variance } = await sampleFromMarginal(sampler, ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps: 50 }));
    expect(Math.abs(mean - MU)).toBeLessThan(0.015);
    expect(Math.sqrt(variance)).toBeGreaterThan(S * 0.96);
    expect(Math.sqrt(variance)).toBeLessThan(S * 1.04);
  });

  /** Mean and variance after ancestral Euler steps: x' − MU = (x − MU)·(d/σ + (1 − d/σ)·shrink(σ)) + up·z. */
  function ancestralEulerMoments(sigmas: Float64Array): { mean: number; variance: number } {
    let variance = S * S + sigmas[0] ** 2;
    for (let i = 0; i + 1 < sigmas.length; i++) {
      const [sigma, next] = [sigmas[i], sigmas[i + 1]];
      const up = Math.min(next, Math.sqrt((next ** 2 * (sigma ** 2 - next ** 2)) / sigma ** 2));
      const down = Math.sqrt(next ** 2 - up ** 2);
      variance = variance * (down / sigma + (1 - down / sigma) * shrink(sigma)) ** 2 + up ** 2;
    }
    return { mean: MU, variance };
  }

  it.each(['euler_ancestral', 'ddpm'])('%s matches the moments of the ancestral Euler chain', async (sampler) => {
    const sigmas = ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps: 20 });
    const expected = ancestralEulerMoments(sigmas);
    const { mean, variance } = await sampleFromMarginal(sampler, sigmas);
    expect(Math.abs(mean - expected.mean)).toBeLessThan(0.015);
    expect(variance / expected.variance).toBeGreaterThan(0.96);
    expect(variance / expected.variance).toBeLessThan(1.04);
  });

  it('ddpm, stepped in the variance-preserving frame, equals euler_ancestral given the same noise', async () => {
    const sigmas = computeSigmas('karras', ms, 12);
    const run = (sampler: string) => {
      const source = gaussian(3);
      return runSampler(sampler, source([64]).map((z) => z * sigmas[0]), sigmas, { denoiser: exactDenoiser, noiseSource: source, shape: [64] });
    };
    const [ddpm, euler] = [await run('ddpm'), await run('euler_ancestral')];
    for (let k = 0; k < 64; k++) expect(ddpm[k]).toBeCloseTo(euler[k], 4);
  });

  it('lcm jumps to the prediction and re-noises: var ← var·shrink(σ)² + σ_next²', async () => {
    const sigmas = ksamplerSigmas(ms, { sampler: 'lcm', scheduler: 'sgm_uniform', steps: 8 });
    let expected = S * S + sigmas[0] ** 2;
    for (let i = 0; i + 1 < sigmas.length; i++) expected = expected * shrink(sigmas[i]) ** 2 + sigmas[i + 1] ** 2;
    const { mean, variance } = await sampleFromMarginal('lcm', sigmas);
    expect(Math.abs(mean - MU)).toBeLessThan(0.015);
    expect(variance / expected).toBeGreaterThan(0.96);
    expect(variance / expected).toBeLessThan(1.04);
  });

  it('matches ComfyUI on the multistep samplers whose corrections vanish on the analytic path', async () => {
    // From a NumPy transcription of ComfyUI's sample_dpmpp_2m_sde, sample_dpmpp_3m_sde and uni_pc.py, run on
    // the same input, denoiser and noise stream (draw j, element k: 1.3·sin(1.7·(4(j − 1) + k + 1))).
    const reference: Record<string, number[]> = {
      dpmpp_2m_sde: [0.649946, -0.6910347, 0.2420727, 1.295181],
      dpmpp_2m_sde_heun: [0.7349833, -0.9256924, 0.2175041, 1.53617],
      dpmpp_3m_sde: [0.7317504, -1.305482, 0.3186047, 1.889907],
      uni_pc: [0.5665274, -0.3784621, 1.400342, 0.3441769],
      uni_pc_bh2: [0.5404478, -0.3120747, 1.292673, 0.3398542],
    };
    for (const [sampler, expected] of Object.entries(reference)) {
      const sigmas = ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps: 6 });
      let drawn = 0;
      const wave: NoiseSource = () => Float32Array.from({ length: 4 }, () => 1.3 * Math.sin(1.7 * ++drawn));
      const xT = Float32Array.from([0.5, -1.2, 2, 0.1], (v) => v * sigmas[0]);
      const x = await runSampler(sampler, xT, sigmas, { denoiser: exactDenoiser, noiseSource: wave, shape: [4] });
      for (let k = 0; k < 4; k++) expect(Math.abs(x[k] - expected[k])).toBeLessThan(2e-5);
    }
  });

  it('draws fresh noise where ComfyUI does: once per step but the last (twice for dpmpp_sde)', async () => {
    const steps = 6;
    for (const sampler of STOCHASTIC) {
      const sigmas = ksamplerSigmas(ms, { sampler, scheduler: 'karras', steps });
      const { draws } = await sampleFromMarginal(sampler, sigmas);
      expect({ sampler, draws }).toEqual({ sampler, draws: sampler.startsWith('dpmpp_sde') ? 2 * (steps - 1) : steps - 1 });
    }
  });
});

describe('sample (KSampler / KSamplerAdvanced)', () => {
  const shape = [1, 4, 2, 2];
  const latent = Float32Array.from({ length: 16 }, (_, k) => 0.1 * k - 0.4);
  const noise = gaussian(11)(shape);

  /** Euler with a denoiser that records every (x, sigma) it sees. */
  function recordingRun(overrides: Partial<Parameters<typeof sample>[0]> = {}) {
    const calls: { x: Float32Array; sigma: number }[] = [];
    const denoiser: Denoiser = async (x, sigma) => {
      calls.push({ x, sigma });
      return exactDenoiser(x, sigma);
    };
    const run = sample({
      sampler: 'euler',
      scheduler: 'karras',
      steps: 10,
      shape,
      latent,
      noise,
      modelSampling: ms,
      denoiser,
      noiseSource: gaussian(5),
      ...overrides,
    });
    return { run, calls };
  }

  it('starts from latent + noise·sqrt(1 + sigma_max²) at full denoise', async () => {
    const { run, calls } = recordingRun();
    await run;
    const sigmaMax = computeSigmas('karras', ms, 10)[0];
    const scale = Math.sqrt(1 + sigmaMax ** 2);
    for (let k = 0; k < 16; k++) expect(calls[0].x[k]).toBeCloseTo(latent[k] + noise[k] * scale, 4);
    expect(calls.map((c) => c.sigma)).toEqual(Array.from(computeSigmas('karras', ms, 10).subarray(0, 10)));
  });

  it('denoise < 1 runs the tail of a longer schedule from latent + noise·sigma', async () => {
    const { run, calls } = recordingRun({ scheduler: 'normal', denoise: 0.5 });
    await run;
    const tail = computeSigmas('normal', ms, 20).subarray(10);
    expect(calls.map((c) => c.sigma)).toEqual(Array.from(tail.subarray(0, 10)));
    for (let k = 0; k < 16; k++) expect(calls[0].x[k]).toBeCloseTo(latent[k] + noise[k] * tail[0], 5);
  });

  it('returns the latent untouched at denoise 0 or a start step past the end', async () => {
    for (const overrides of [{ denoise: 0 }, { startStep: 10 }, { startStep: 12, endStep: 20 }]) {
      const { run, calls } = recordingRun(overrides);
      expect(await run).toEqual(latent);
      expect(calls.length).toBe(0);
    }
  });

  it('ends fully denoised when it stops early, unless asked to return leftover noise', async () => {
    const full = computeSigmas('karras', ms, 10);
    const forced = recordingRun({ startStep: 3, endStep: 7 });
    const result = await forced.run;
    expect(forced.calls.map((c) => c.sigma)).toEqual(Array.from(full.subarray(3, 7)));
    // Euler's last step to sigma 0 lands on the prediction.
    const last = forced.calls[forced.calls.length - 1];
    const expected = await exactDenoiser(last.x, last.sigma);
    for (let k = 0; k < 16; k++) expect(result[k]).toBeCloseTo(expected[k], 5);

    // With leftover noise it stays on the ODE path at sigma_7 (dpmpp_2m follows it closely).
    const leftover = recordingRun({ sampler: 'dpmpp_2m', startStep: 3, endStep: 7, returnWithLeftoverNoise: true });
    const noisy = await leftover.run;
    expect(leftover.calls.map((c) => c.sigma)).toEqual(Array.from(full.subarray(3, 7)));
    const start = leftover.calls[0];
    for (let k = 0; k < 16; k++) expect(Math.abs(noisy[k] - odeSolution(start.x[k], full[3], full[7]))).toBeLessThan(0.02);
    expect(Math.max(...noisy.map((v, k) => Math.abs(v - result[k])))).toBeGreaterThan(0.1);
  });

  it('adds no noise when add_noise is disabled', async () => {
    const { run, calls } = recordingRun({ addNoise: false, startStep: 4 });
    await run;
    expect(calls[0].x).toEqual(latent);
  });

  it('splits into two KSamplerAdvanced passes exactly (leftover noise, then add_noise disabled)', async () => {
    for (const sampler of ['euler', 'euler_ancestral']) {
      const common = { sampler, scheduler: 'karras', steps: 12, shape, modelSampling: ms, denoiser: exactDenoiser };
      const whole = await sample({ ...common, latent, noise, noiseSource: gaussian(9) });
      const secondPassNoise = gaussian(9);
      const first = await sample({ ...common, latent, noise, noiseSource: secondPassNoise, endStep: 5, returnWithLeftoverNoise: true });
      const second = await sample({ ...common, latent: first, noise, noiseSource: secondPassNoise, addNoise: false, startStep: 5 });
      for (let k = 0; k < 16; k++) expect(second[k]).toBeCloseTo(whole[k], 5);
    }
  });

  it('calls beforeStep before each step’s model evaluations and onStep after them', async () => {
    const events: string[] = [];
    const infos: StepInfo[] = [];
    const firstInputs: Float32Array[] = [];
    const denoiser: Denoiser = async (x, sigma) => {
      if (events[events.length - 1]?.startsWith('before')) firstInputs.push(x);
      events.push(`denoise ${sigma.toFixed(4)}`);
      return exactDenoiser(x, sigma);
    };
    const sigmas = computeSigmas('karras', ms, 4);
    await sample({
      sampler: 'heun',
      scheduler: 'karras',
      steps: 4,
      shape,
      latent,
      noise,
      modelSampling: ms,
      denoiser,
      noiseSource: noNoise,
      hooks: {
        beforeStep: (index, total, sigma) => void events.push(`before ${index}/${total} ${sigma.toFixed(4)}`),
        onStep: (info) => {
          events.push(`after ${info.index}`);
          infos.push(info);
        },
      },
    });
    const s = Array.from(sigmas, (v) => v.toFixed(4));
    expect(events).toEqual([
      ...[0, 1, 2].flatMap((i) => [`before ${i}/4 ${s[i]}`, `denoise ${s[i]}`, `denoise ${s[i + 1]}`, `after ${i}`]),
      `before 3/4 ${s[3]}`,
      `denoise ${s[3]}`,
      'after 3',
    ]);
    for (const [i, info] of infos.entries()) {
      expect(info).toMatchObject({ index: i, total: 4, sigma: sigmas[i], sigmaNext: sigmas[i + 1] });
      expect(info.x).toBe(firstInputs[i]);
      expect(info.denoised).toEqual(await exactDenoiser(firstInputs[i], sigmas[i]));
    }
  });

  it('awaits an async beforeStep before the model runs', async () => {
    let strength = -1;
    const seen: number[] = [];
    await sample({
      sampler: 'dpmpp_2m',
      scheduler: 'simple',
      steps: 5,
      shape,
      latent,
      noise,
      modelSampling: ms,
      denoiser: async (x, sigma) => {
        seen.push(strength);
        return exactDenoiser(x, sigma);
      },
      noiseSource: noNoise,
      hooks: {
        beforeStep: async (index) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          strength = index / 10;
        },
      },
    });
    expect(seen).toEqual([0, 0.1, 0.2, 0.3, 0.4]);
  });

  it('stops at once and rethrows when onStep throws (interrupt)', async () => {
    let evaluations = 0;
    const run = sample({
      sampler: 'euler_ancestral',
      scheduler: 'karras',
      steps: 10,
      shape,
      latent,
      noise,
      modelSampling: ms,
      denoiser: async (x, sigma) => {
        evaluations++;
        return exactDenoiser(x, sigma);
      },
      noiseSource: gaussian(1),
      hooks: {
        onStep: ({ index }) => {
          if (index === 2) throw new InterruptedError();
        },
      },
    });
    await expect(run).rejects.toBeInstanceOf(InterruptedError);
    expect(evaluations).toBe(3);
  });

  it('refuses an unknown sampler before running anything', async () => {
    const { run, calls } = recordingRun({ sampler: 'euler_a' });
    await expect(run).rejects.toThrow(/Unknown sampler "euler_a". Valid samplers: euler, euler_ancestral/);
    expect(calls.length).toBe(0);
  });

  it('lists ComfyUI sampler names in ComfyUI order', () => {
    expect(SAMPLER_NAMES).toEqual([
      'euler', 'euler_ancestral', 'heun', 'dpm_2', 'dpm_2_ancestral', 'lms', 'dpmpp_2s_ancestral', 'dpmpp_sde',
      'dpmpp_sde_gpu', 'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_2m_sde_gpu', 'dpmpp_2m_sde_heun', 'dpmpp_2m_sde_heun_gpu',
      'dpmpp_3m_sde', 'dpmpp_3m_sde_gpu', 'ddpm', 'lcm', 'ddim', 'uni_pc', 'uni_pc_bh2',
    ]);
  });
});

describe('cfgDenoiser', () => {
  const x = Float32Array.from([1.5, -0.5]);
  const sigma = ms.sigma(500);
  const condOut = Float32Array.from([0.2, 0.4]);
  const uncondOut = Float32Array.from([-0.1, 0.3]);

  function recordingModel() {
    const calls: { input: Float32Array; timestep: number; withUncond: boolean }[] = [];
    const model: GuidedModel = async (input, timestep, withUncond) => {
      calls.push({ input, timestep, withUncond });
      return withUncond ? { cond: condOut, uncond: uncondOut } : { cond: condOut };
    };
    return { model, calls };
  }

  it('scales the input, passes the nearest timestep and skips the negative pass at cfg 1', async () => {
    const { model, calls } = recordingModel();
    const denoised = await cfgDenoiser(model, ms, 1)(x, sigma * 1.00001);
    expect(calls).toHaveLength(1);
    expect(calls[0].timestep).toBe(500);
    expect(calls[0].withUncond).toBe(false);
    const cIn = 1 / Math.sqrt(1 + (sigma * 1.00001) ** 2);
    expect(calls[0].input[0]).toBeCloseTo(1.5 * cIn, 6);
    expect(denoised[0]).toBeCloseTo(1.5 - 0.2 * sigma * 1.00001, 5);
  });

  it('combines the x0 predictions as uncond + (cond − uncond)·cfg', async () => {
    for (const prediction of ['eps', 'v'] as const) {
      const modelSampling = new DiscreteModelSampling({ prediction });
      const { model, calls } = recordingModel();
      const denoised = await cfgDenoiser(model, modelSampling, 7.5)(x, sigma);
      expect(calls[0].withUncond).toBe(true);
      const cond = modelSampling.calculateDenoised(sigma, condOut, x);
      const uncond = modelSampling.calculateDenoised(sigma, uncondOut, x);
      for (let k = 0; k < 2; k++) expect(denoised[k]).toBeCloseTo(uncond[k] + (cond[k] - uncond[k]) * 7.5, 5);
    }
  });
});
