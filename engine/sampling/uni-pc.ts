import type { Sampler } from './types.ts';
import { combine } from './vector.ts';

/**
 * UniPC (Zhao et al. 2023) as ComfyUI runs it (comfy/extra_samplers/uni_pc.py): multistep, data prediction,
 * order min(3, steps − 1) with lower orders for the first and last steps, a corrector after every step but
 * the last. ComfyUI integrates in the variance-preserving frame; dividing its update by alpha_t gives the
 * same update on k-diffusion latents, which is what is written here.
 *
 * ComfyUI's step k predicts x at sigma_k and corrects it once the model has been evaluated there; here the
 * correction opens step k (it needs that evaluation) and the prediction for sigma_(k+1) closes it.
 */

/** ComfyUI's UniPC stops here instead of at sigma 0 (its schedule has no point with zero noise). */
const FINAL_SIGMA = Math.fround(0.001);

type Variant = 'bh1' | 'bh2';

interface Evaluation {
  readonly lambda: number;
  readonly denoised: Float32Array;
}

interface PlannedUpdate {
  readonly predicted: Float32Array;
  /** The corrected latent, given the model's prediction at the predicted one. */
  correct(denoisedThere: Float32Array): Float32Array;
}

/** Solves the small dense system a·x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) if (Math.abs(m[row][col]) > Math.abs(m[pivot][col])) pivot = row;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let row = col + 1; row < n; row++) {
      const factor = m[row][col] / m[col][col];
      for (let k = col; k <= n; k++) m[row][k] -= factor * m[col][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let row = n - 1; row >= 0; row--) {
    let sum = m[row][n];
    for (let k = row + 1; k < n; k++) sum -= m[row][k] * x[k];
    x[row] = sum / m[row][row];
  }
  return x;
}

/** The B(h) update of `order` from the newest evaluation (at `sigma`, where `x` is) to `sigmaTarget`. */
function planUpdate(variant: Variant, history: readonly Evaluation[], x: Float32Array, sigma: number, sigmaTarget: number, order: number): PlannedUpdate {
  const newest = history[history.length - 1];
  const h = -Math.log(sigmaTarget) - newest.lambda;
  const ratios: number[] = [];
  const differences: Float32Array[] = [];
  for (let k = 1; k < order; k++) {
    const older = history[history.length - 1 - k];
    const ratio = (older.lambda - newest.lambda) / h;
    ratios.push(ratio);
    differences.push(combine([1 / ratio, older.denoised], [-1 / ratio, newest.denoised]));
  }
  ratios.push(1);

  const hh = -h;
  const hPhi1 = Math.expm1(hh);
  const bh = variant === 'bh1' ? hh : Math.expm1(hh);
  const powers: number[][] = [];
  const rhs: number[] = [];
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  for (let k = 1; k <= order; k++) {
    powers.push(ratios.map((r) => r ** (k - 1)));
    rhs.push((hPhiK * factorial) / bh);
    factorial *= k + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }

  const base = combine([sigmaTarget / sigma, x], [-hPhi1, newest.denoised]);
  const predictorWeights = order === 2 ? [0.5] : order > 2 ? solve(powers.slice(0, -1), rhs.slice(0, -1)) : [];
  const predicted = combine([1, base], ...differences.map((d, k) => [-bh * predictorWeights[k], d] as const));
  return {
    predicted,
    correct(denoisedThere) {
      const weights = order === 1 ? [0.5] : solve(powers, rhs);
      const last = weights[weights.length - 1];
      const terms = differences.map((d, k) => [-bh * weights[k], d] as const);
      return combine([1, base], ...terms, [-bh * last, denoisedThere], [bh * last, newest.denoised]);
    },
  };
}

function uniPc(variant: Variant): Sampler {
  return ({ sigmas, denoise }) => {
    const steps = sigmas.length - 1;
    const target = (k: number) => (k === steps && sigmas[k] === 0 ? FINAL_SIGMA : sigmas[k]);
    const maxOrder = Math.min(3, steps - 1);
    const orderOfUpdateTo = (k: number) => (k < maxOrder ? k : Math.min(maxOrder, steps + 1 - k));
    const history: Evaluation[] = [];
    let pending: PlannedUpdate | undefined;
    return async (i, x) => {
      const sigma = sigmas[i];
      const denoised = await denoise(x, sigma);
      if (maxOrder < 1) {
        // Given a single step, ComfyUI's UniPC takes none: the latent only goes to its VP frame and back.
        return { x: combine([Math.sqrt((1 + target(1) ** 2) / (1 + sigma ** 2)), x]), denoised };
      }
      const current = pending ? pending.correct(denoised) : x;
      history.push({ lambda: -Math.log(sigma), denoised });
      if (history.length > maxOrder) history.shift();
      pending = planUpdate(variant, history, current, sigma, target(i + 1), orderOfUpdateTo(i + 1));
      return { x: pending.predicted, denoised };
    };
  };
}

export const uniPcBh1 = uniPc('bh1');
export const uniPcBh2 = uniPc('bh2');
