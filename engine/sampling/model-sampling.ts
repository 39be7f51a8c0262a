import { linspace } from './linspace.ts';

/** What the network predicts: the noise (`eps`, SD1/SDXL) or the velocity (`v`, SD2-768 and v-pred finetunes). */
export type Prediction = 'eps' | 'v';

export interface DiscreteScheduleOptions {
  prediction?: Prediction;
  /** First and last beta of the scaled-linear schedule (linear in sqrt(beta)). */
  linearStart?: number;
  linearEnd?: number;
  timesteps?: number;
}

/**
 * ComfyUI's ModelSamplingDiscrete with the EPS or V_PREDICTION parameterisation: the 1000-step DDPM schedule of
 * SD1/SD2/SDXL seen as k-diffusion sigmas, and the conversions between the sampler's latent and the network.
 */
export class DiscreteModelSampling {
  readonly prediction: Prediction;
  readonly alphasCumprod: Float64Array;
  /** sigma_t = sqrt((1 − ᾱ_t) / ᾱ_t) for every timestep, rounded to float32 as ComfyUI stores them. */
  readonly sigmas: Float64Array;
  private readonly logSigmas: Float64Array;

  constructor({ prediction = 'eps', linearStart = 0.00085, linearEnd = 0.012, timesteps = 1000 }: DiscreteScheduleOptions = {}) {
    this.prediction = prediction;
    const sqrtBetas = linspace(Math.sqrt(linearStart), Math.sqrt(linearEnd), timesteps);
    this.alphasCumprod = new Float64Array(timesteps);
    this.sigmas = new Float64Array(timesteps);
    this.logSigmas = new Float64Array(timesteps);
    let cumprod = 1;
    for (let t = 0; t < timesteps; t++) {
      cumprod *= 1 - sqrtBetas[t] ** 2;
      this.alphasCumprod[t] = cumprod;
      const sigma = Math.sqrt((1 - cumprod) / cumprod);
      this.sigmas[t] = Math.fround(sigma);
      this.logSigmas[t] = Math.fround(Math.log(sigma));
    }
  }

  get sigmaMin(): number {
    return this.sigmas[0];
  }

  get sigmaMax(): number {
    return this.sigmas[this.sigmas.length - 1];
  }

  /** The timestep the network is given for `sigma`: the nearest one in log-sigma (ComfyUI's argmin). */
  timestep(sigma: number): number {
    const logSigma = Math.log(sigma);
    let best = 0;
    for (let t = 1; t < this.logSigmas.length; t++) {
      if (Math.abs(logSigma - this.logSigmas[t]) < Math.abs(logSigma - this.logSigmas[best])) best = t;
    }
    return best;
  }

  /** The sigma of a (possibly fractional) timestep, interpolating log-sigma linearly between neighbours. */
  sigma(timestep: number): number {
    const t = Math.min(Math.max(timestep, 0), this.sigmas.length - 1);
    const low = Math.floor(t);
    const w = t - low;
    return Math.fround(Math.exp((1 - w) * this.logSigmas[low] + w * this.logSigmas[Math.ceil(t)]));
  }

  /** c_in = 1 / sqrt(sigma² + 1): the network sees the latent in variance-preserving scale. */
  inputScale(sigma: number): number {
    return 1 / Math.sqrt(sigma * sigma + 1);
  }

  calculateInput(sigma: number, x: Float32Array): Float32Array {
    const scale = this.inputScale(sigma);
    return x.map((v) => v * scale);
  }

  /** Turns the network's raw output for latent `x` at `sigma` into the x0 prediction. */
  calculateDenoised(sigma: number, output: Float32Array, x: Float32Array): Float32Array {
    const out = new Float32Array(x.length);
    if (this.prediction === 'eps') {
      for (let k = 0; k < out.length; k++) out[k] = x[k] - output[k] * sigma;
    } else {
      // v = alpha·eps − sigma_vp·x0 in the variance-preserving frame, with sigma_data = 1.
      const skip = 1 / (sigma * sigma + 1);
      const outScale = sigma / Math.sqrt(sigma * sigma + 1);
      for (let k = 0; k < out.length; k++) out[k] = x[k] * skip - output[k] * outScale;
    }
    return out;
  }

  /**
   * The sampler's starting latent `latent + noise·sigma`; when the run starts from pure noise (ComfyUI's
   * max_denoise) the noise is scaled by sqrt(1 + sigma²) instead, the spread of x_T in the DDPM frame.
   */
  noiseScaling(sigma: number, noise: Float32Array, latent: Float32Array, maxDenoise: boolean): Float32Array {
    const scale = maxDenoise ? Math.sqrt(1 + sigma * sigma) : sigma;
    const out = new Float32Array(noise.length);
    for (let k = 0; k < out.length; k++) out[k] = noise[k] * scale + latent[k];
    return out;
  }

  /** ComfyUI starts at maximum noise when the first sigma reaches sigma_max (relative tolerance 1e-5). */
  isMaxDenoise(firstSigma: number): boolean {
    const max = this.sigmaMax;
    return Math.abs(max - firstSigma) <= 1e-5 * Math.max(Math.abs(max), Math.abs(firstSigma)) || firstSigma > max;
  }
}
