/**
 * Applying emphasis weights to an encoded chunk: the text encoder's output for one 77-token chunk, `tokens ×
 * width` floats in row-major order, with one weight per token.
 *
 * - `comfy` (the default, ComfyUI's): each token whose weight is not 1 moves away from (w > 1) or towards
 *   (w < 1) the encoding of the empty prompt at the same position: z' = (z − z_empty)·w + z_empty. `emptyZ` is
 *   the encoder's output for the empty prompt (start, end, padding) with the same padding as `z`. Emphasis then
 *   changes only what the prompt adds to the empty conditioning.
 * - `a1111` (A1111's "Original"): z' = z·w, then the whole chunk is rescaled so its mean is what it was before
 *   weighting; the rescale also nudges the unweighted tokens.
 */
export type Emphasis = { readonly mode: 'comfy'; readonly emptyZ: Float32Array } | { readonly mode: 'a1111' };

export type EmphasisMode = Emphasis['mode'];

export const EMPHASIS_MODES: readonly EmphasisMode[] = ['comfy', 'a1111'];
export const DEFAULT_EMPHASIS_MODE: EmphasisMode = 'comfy';

export function applyEmphasis(z: Float32Array, weights: readonly number[], emphasis: Emphasis): Float32Array {
  if (weights.length === 0 || z.length % weights.length !== 0) {
    throw new Error(`applyEmphasis: ${z.length} values do not split into ${weights.length} token vectors`);
  }
  const width = z.length / weights.length;
  return emphasis.mode === 'comfy' ? weightLikeComfy(z, emphasis.emptyZ, weights, width) : weightLikeA1111(z, weights, width);
}

function weightLikeComfy(z: Float32Array, emptyZ: Float32Array, weights: readonly number[], width: number): Float32Array {
  if (emptyZ.length !== z.length) throw new Error(`applyEmphasis: emptyZ has ${emptyZ.length} values, z has ${z.length}`);
  const out = Float32Array.from(z);
  weights.forEach((weight, token) => {
    if (weight === 1) return;
    for (let i = token * width; i < (token + 1) * width; i++) out[i] = (z[i] - emptyZ[i]) * weight + emptyZ[i];
  });
  return out;
}

function mean(values: Float32Array): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

function weightLikeA1111(z: Float32Array, weights: readonly number[], width: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = z[i] * weights[Math.floor(i / width)];
  const before = mean(z);
  const after = mean(out);
  // A chunk whose weighted mean is exactly 0 cannot be rescaled; A1111 would divide by zero.
  const scale = after === 0 ? 1 : before / after;
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  return out;
}
