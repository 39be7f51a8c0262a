import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  encodeJpegPreview,
  imageTensorToImages,
  imageTensorToVaeInput,
  imageToComfyTensors,
  latentPreviewRgb,
  SD15_LATENT_RGB,
  SDXL_LATENT_RGB,
  vaeOutputToImageTensor,
  type Image8,
} from '../../engine/image/index.ts';

const f32 = (...values: number[]) => new Float32Array(values);

describe('tensor conversions', () => {
  it('maps VAE output -1..1 to IMAGE 0..1 with clamping and NCHW → NHWC', () => {
    // [1, 3, 1, 2]: channel-major in, pixel-major out.
    const out = vaeOutputToImageTensor({ shape: [1, 3, 1, 2], data: f32(-1, 1, 0, -1.5, 2, 0.5) });
    expect(out.shape).toEqual([1, 1, 2, 3]);
    expect([...out.data]).toEqual([0, 0.5, 1, 1, 0, 0.75]);
    expect(Number.isNaN(vaeOutputToImageTensor({ shape: [1, 3, 1, 1], data: f32(NaN, 0, 0) }).data[0])).toBe(true);
  });

  it('writes bytes as SaveImage does: 255 * x clipped and truncated, NaN as 0', () => {
    const values = [0, 1, 0.5, 0.75, 0.999, 1 / 255, -0.3, 1.2, NaN, 254.9 / 255];
    const padded = values.flatMap((v) => [v, v, v]);
    const [pixels] = imageTensorToImages({ shape: [1, 1, values.length, 3], data: Float32Array.from(padded) });
    expect([...pixels.data].filter((_, i) => i % 3 === 0)).toEqual([0, 255, 127, 191, 254, 1, 0, 255, 0, 254]);
  });

  it('splits a batch and keeps 4 channels', () => {
    const images = imageTensorToImages({ shape: [2, 1, 1, 4], data: f32(0, 0.5, 1, 0.2, 1, 1, 1, 0) });
    expect(images.map((i) => [i.width, i.height, i.channels, ...i.data])).toEqual([
      [1, 1, 4, 0, 127, 255, 51],
      [1, 1, 4, 255, 255, 255, 0],
    ]);
  });

  it('loads as LoadImage: float32 byte / 255, mask = 1 - alpha, 64x64 zero mask without alpha', () => {
    const rgba: Image8 = { width: 2, height: 1, channels: 4, data: new Uint8Array([255, 128, 0, 0, 1, 2, 3, 255]) };
    const { image, mask } = imageToComfyTensors(rgba);
    expect(image.shape).toEqual([1, 1, 2, 3]);
    expect([...image.data]).toEqual([255, 128, 0, 1, 2, 3].map((b) => Math.fround(b / 255)));
    expect(mask.shape).toEqual([1, 1, 2]);
    expect([...mask.data]).toEqual([1, 0]);

    const rgb = imageToComfyTensors({ width: 3, height: 2, channels: 3, data: new Uint8Array(18).fill(9) });
    expect(rgb.mask.shape).toEqual([1, 64, 64]);
    expect(rgb.mask.data.length).toBe(64 * 64);
    expect(rgb.mask.data.every((v) => v === 0)).toBe(true);
  });

  it('computes the mask in float32 steps, as torch does', () => {
    const alphas = Array.from({ length: 256 }, (_, a) => a);
    const image: Image8 = { width: 256, height: 1, channels: 4, data: new Uint8Array(alphas.flatMap((a) => [0, 0, 0, a])) };
    const { mask } = imageToComfyTensors(image);
    expect([...mask.data]).toEqual(alphas.map((a) => Math.fround(1 - Math.fround(a / 255))));
    // Rounding 1 - a/255 once differs for some alphas: the float32 intermediate matters.
    expect(alphas.some((a) => Math.fround(1 - a / 255) !== mask.data[a])).toBe(true);
  });

  it('round-trips every byte value through LoadImage and SaveImage conversions', () => {
    const bytes = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
    const { image } = imageToComfyTensors({ width: 256, height: 1, channels: 3, data: bytes });
    expect([...imageTensorToImages(image)[0].data]).toEqual([...bytes]);
  });

  it('builds VAE encoder input: 2x - 1, NHWC → NCHW, alpha dropped', () => {
    const out = imageTensorToVaeInput({ shape: [1, 1, 2, 4], data: f32(0, 0.5, 1, 0.9, 0.25, 0.75, 1, 0.1) });
    expect(out.shape).toEqual([1, 3, 1, 2]);
    expect([...out.data]).toEqual([-1, -0.5, 0, 0.5, 1, 1]);
  });

  it('rejects tensors whose shape does not fit their data', () => {
    expect(() => imageTensorToImages({ shape: [1, 2, 2, 3], data: f32(1) })).toThrow(/does not fit/);
    expect(() => vaeOutputToImageTensor({ shape: [1, 4, 1, 1], data: f32(1, 2, 3, 4) })).toThrow(/3 channels/);
  });
});

describe('latent previews', () => {
  /** The projection written out independently: rgb = bias + Σ latent·weight, clamp, (v + 1) · 127.5, round. */
  function expectedPixel(latent: number[], factors: typeof SD15_LATENT_RGB): number[] {
    return [0, 1, 2].map((c) => {
      const v = latent.reduce((sum, x, k) => sum + x * factors.weights[k][c], factors.bias?.[c] ?? 0);
      return Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5);
    });
  }

  it('projects a [1, 4, h, w] latent to an h x w RGB image with values in 0..255', () => {
    const [h, w] = [5, 7];
    const latent = Float32Array.from({ length: 4 * h * w }, (_, i) => Math.sin(i * 12.9898) * 2);
    const preview = latentPreviewRgb(latent, [1, 4, h, w]);
    expect([preview.width, preview.height, preview.channels, preview.data.length]).toEqual([w, h, 3, w * h * 3]);
    const values = [...preview.data];
    expect(Math.min(...values)).toBe(0); // |latent| up to 2 saturates some pixels
    expect(Math.max(...values)).toBe(255);
    expect(new Set(values).size).toBeGreaterThan(20);
    for (const p of [0, 13, h * w - 1]) {
      const pixel = [0, 1, 2, 3].map((k) => latent[k * h * w + p]);
      expect([...preview.data.subarray(p * 3, p * 3 + 3)]).toEqual(expectedPixel(pixel, SD15_LATENT_RGB));
    }
  });

  it('uses the first latent of a batch and the SDXL bias', () => {
    const latent = new Float32Array(2 * 4 * 1 * 1);
    latent.fill(5, 4); // second sample only: must not show
    expect([...latentPreviewRgb(latent, [2, 4, 1, 1], SDXL_LATENT_RGB).data]).toEqual(expectedPixel([0, 0, 0, 0], SDXL_LATENT_RGB));
    expect([...latentPreviewRgb(latent, [2, 4, 1, 1], SDXL_LATENT_RGB).data]).toEqual([141, 125, 127]);
    // 127.5 is a tie: torch.round goes to the even 128.
    expect([...latentPreviewRgb(new Float32Array(4), [1, 4, 1, 1]).data]).toEqual([128, 128, 128]);
    expect(() => latentPreviewRgb(new Float32Array(16), [1, 16, 1, 1])).toThrow(/does not fit/);
  });

  it('rounds float32 halves to even, as torch.round', () => {
    // (v + 1) * 127.5 lands exactly on 64.5 and 65.5 in float32 for these v.
    const identity = { weights: [[1, 1, 1]] as [number, number, number][] };
    const halfway = (k: number) => Math.fround(Math.fround(k / 255) - 1);
    expect([...latentPreviewRgb(f32(halfway(129), halfway(131)), [1, 1, 1, 2], identity).data]).toEqual([64, 64, 64, 66, 66, 66]);
  });

  it('encodes a JPEG preview that fits maxSize and is never enlarged', async () => {
    const image: Image8 = { width: 64, height: 48, channels: 3, data: new Uint8Array(64 * 48 * 3).fill(100) };
    const small = await sharp(await encodeJpegPreview(image, 32)).metadata();
    expect([small.format, small.width, small.height]).toEqual(['jpeg', 32, 24]);
    const same = await sharp(await encodeJpegPreview(image, 512)).metadata();
    expect([same.width, same.height]).toEqual([64, 48]);
  });
});
