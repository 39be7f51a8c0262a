/**
 * Conversions between 8-bit images and the float tensors ComfyUI's nodes pass around, with ComfyUI's exact
 * rounding so that the same tensor gives the same PNG bytes here and there:
 * - IMAGE is [B, H, W, C] float32 in 0..1; SaveImage writes `clip(255 * x, 0, 255).astype(uint8)` (float32
 *   product, then truncation, not rounding).
 * - LoadImage reads `uint8 / 255` in float32 and MASK = 1 - alpha / 255, or a 64x64 zero mask without alpha.
 * - The VAE works in [B, 3, H, W] float32 in -1..1: decoded IMAGE = clamp((x + 1) / 2, 0, 1), encoder input
 *   = 2 * image - 1.
 * JS computes in double and a Float32Array store rounds once; that equals float32 arithmetic step by step
 * wherever an intermediate is exact in double (sums and products of two float32 values, halving). Where an
 * intermediate float32 rounding could change the result (LoadImage's mask), it is done with Math.fround.
 */
import { assertImage8, assertTensor, type FloatTensor, type Image8 } from './types.ts';

/** ComfyUI's LoadImage gives images without alpha this placeholder mask. */
const NO_ALPHA_MASK_SIZE = 64;

/**
 * SaveImage's float → byte step: 255 * x clipped and truncated (NaN → 0). The product is exact in double;
 * rounding it to float32 first, as numpy does, never changes the truncated byte for any float32 in 0..1
 * (checked exhaustively), so it is skipped.
 */
function floatToByte(x: number): number {
  const scaled = 255 * x;
  if (!(scaled > 0)) return 0;
  return scaled >= 255 ? 255 : Math.trunc(scaled);
}

/** IMAGE [B, H, W, 3|4] → one 8-bit image per batch entry, as SaveImage/PreviewImage convert them. */
export function imageTensorToImages(tensor: FloatTensor): Image8[] {
  assertTensor(tensor, 4, 'IMAGE tensor');
  const [batch, height, width, channels] = tensor.shape;
  if (channels !== 3 && channels !== 4) throw new Error(`IMAGE tensor must have 3 or 4 channels, got ${channels}`);
  const size = height * width * channels;
  const images: Image8[] = [];
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(size);
    const src = tensor.data.subarray(b * size, (b + 1) * size);
    for (let i = 0; i < size; i++) data[i] = floatToByte(src[i]);
    images.push({ width, height, channels, data });
  }
  return images;
}

/** What LoadImage outputs for one image: IMAGE [1, H, W, 3] and MASK [1, H, W] (1 where alpha is 0). */
export function imageToComfyTensors(image: Image8): { image: FloatTensor; mask: FloatTensor } {
  assertImage8(image);
  const { width, height, channels, data } = image;
  const pixels = width * height;
  const rgb = new Float32Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * channels + c] / 255;
  }
  let mask: FloatTensor;
  if (channels === 4) {
    const values = new Float32Array(pixels);
    for (let p = 0; p < pixels; p++) values[p] = 1 - Math.fround(data[p * 4 + 3] / 255);
    mask = { shape: [1, height, width], data: values };
  } else {
    mask = { shape: [1, NO_ALPHA_MASK_SIZE, NO_ALPHA_MASK_SIZE], data: new Float32Array(NO_ALPHA_MASK_SIZE ** 2) };
  }
  return { image: { shape: [1, height, width, 3], data: rgb }, mask };
}

/** VAE decoder output [B, 3, H, W] in -1..1 → IMAGE [B, H, W, 3] in 0..1, as ComfyUI's VAEDecode. */
export function vaeOutputToImageTensor(tensor: FloatTensor): FloatTensor {
  assertTensor(tensor, 4, 'VAE output');
  const [batch, channels, height, width] = tensor.shape;
  if (channels !== 3) throw new Error(`VAE output must have 3 channels, got ${channels}`);
  const plane = height * width;
  const out = new Float32Array(tensor.data.length);
  for (let b = 0; b < batch; b++) {
    const base = b * 3 * plane;
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        const v = (tensor.data[base + c * plane + p] + 1) / 2;
        // NaN stays NaN, as with torch.clamp; SaveImage later writes it as 0.
        out[base + p * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
  return { shape: [batch, height, width, 3], data: out };
}

/** IMAGE [B, H, W, 3|4] in 0..1 → VAE encoder input [B, 3, H, W] in -1..1 (alpha dropped, as VAEEncode). */
export function imageTensorToVaeInput(tensor: FloatTensor): FloatTensor {
  assertTensor(tensor, 4, 'IMAGE tensor');
  const [batch, height, width, channels] = tensor.shape;
  if (channels !== 3 && channels !== 4) throw new Error(`IMAGE tensor must have 3 or 4 channels, got ${channels}`);
  const plane = height * width;
  const out = new Float32Array(batch * 3 * plane);
  for (let b = 0; b < batch; b++) {
    const src = b * plane * channels;
    const dst = b * 3 * plane;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[dst + c * plane + p] = tensor.data[src + p * channels + c] * 2 - 1;
    }
  }
  return { shape: [batch, 3, height, width], data: out };
}
