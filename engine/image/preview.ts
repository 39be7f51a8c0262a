/**
 * Cheap step previews: ComfyUI's "latent2rgb" previewer, a fixed linear map from latent channels to RGB, then
 * a small JPEG. The factors apply to the latent the sampler works on (already scaled by the VAE factor).
 */
import sharp from 'sharp';
import type { Image8 } from './types.ts';

export interface LatentRgbFactors {
  /** One [R, G, B] row per latent channel. */
  readonly weights: readonly (readonly [number, number, number])[];
  readonly bias?: readonly [number, number, number];
}

/** comfy/latent_formats.py SD15 (also used for SD2). */
export const SD15_LATENT_RGB: LatentRgbFactors = {
  weights: [
    [0.3512, 0.2297, 0.3227],
    [0.325, 0.4974, 0.235],
    [-0.2829, 0.1762, 0.2721],
    [-0.212, -0.2616, -0.7177],
  ],
};

/** comfy/latent_formats.py SDXL. */
export const SDXL_LATENT_RGB: LatentRgbFactors = {
  weights: [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
  ],
  bias: [0.1084, -0.0175, -0.0011],
};

/** torch.round: halves go to the even neighbour (values here are never negative). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * An RGB preview (one pixel per latent pixel) of the first latent in `latent` [B, C, h, w], as ComfyUI's
 * previewer computes it: rgb = latent · weights + bias, clamped to -1..1, mapped to 0..255 and rounded.
 */
export function latentPreviewRgb(
  latent: Float32Array,
  shape: readonly number[],
  factors: LatentRgbFactors = SD15_LATENT_RGB,
): Image8 {
  const [batch, channels, height, width] = shape;
  if (shape.length !== 4 || batch < 1 || channels !== factors.weights.length || latent.length !== batch * channels * height * width) {
    throw new Error(`latent shape [${shape.join(', ')}] does not fit ${latent.length} values and ${factors.weights.length} factor rows`);
  }
  // torch holds the factors as float32.
  const weights = Float32Array.from(factors.weights.flat());
  const bias = Float32Array.from(factors.bias ?? [0, 0, 0]);
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let sum = bias[c];
      for (let k = 0; k < channels; k++) sum += latent[k * plane + p] * weights[k * 3 + c];
      const clamped = Math.min(1, Math.max(-1, Math.fround(sum)));
      data[p * 3 + c] = roundHalfEven(Math.fround(Math.fround(clamped + 1) * 127.5));
    }
  }
  return { width, height, channels: 3, data };
}

/** JPEG bytes of `image` shrunk to fit `maxSize` x `maxSize` (never enlarged: the browser scales up for free). */
export async function encodeJpegPreview(image: Image8, maxSize: number): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .resize({ width: maxSize, height: maxSize, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 95 })
    .toBuffer();
}
