import { numel } from '../safetensors/index.ts';
import type { FloatTensor } from '../tensor/tensor.ts';

/** An 8-bit image: row-major, channels interleaved (RGB or RGBA), as PNG and sharp's raw format lay it out. */
export interface Image8 {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly data: Uint8Array;
}

export type { FloatTensor } from '../tensor/tensor.ts';

/** Callers build images in code, so a wrong size is a programming error, not a user error. */
export function assertImage8(image: Image8): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`image size must be positive integers, got ${width}x${height}`);
  }
  if (channels !== 3 && channels !== 4) throw new Error(`image channels must be 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new Error(`image data has ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
}

export function assertTensor(tensor: FloatTensor, rank: number, what: string): void {
  if (tensor.shape.length !== rank || numel(tensor.shape) !== tensor.data.length) {
    throw new Error(`${what}: shape [${tensor.shape.join(', ')}] does not fit ${tensor.data.length} values`);
  }
}
