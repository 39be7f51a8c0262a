/** PNG encoding: pixels through sharp (libpng, deterministic), text chunks spliced in right after IHDR. */
import sharp from 'sharp';
import { buildTextChunk } from './png-text.ts';
import { assertImage8, type Image8 } from './types.ts';

export interface PngOptions {
  /** zlib level 0-9; ComfyUI's SaveImage uses 4 (PreviewImage 1). */
  compressionLevel?: number;
}

/** Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC). */
const IHDR_END = 33;

/**
 * PNG bytes of `image` with one text chunk per entry of `text`, in order, before IDAT (where readers that
 * stop at the pixels, like sharp's metadata(), still see them). Same input → same bytes.
 */
export async function encodePng(image: Image8, text: Record<string, string> = {}, options: PngOptions = {}): Promise<Buffer> {
  assertImage8(image);
  const chunks = Object.entries(text).map(([keyword, value]) => buildTextChunk(keyword, value));
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .png({ compressionLevel: options.compressionLevel ?? 4 })
    .toBuffer();
  if (png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('sharp wrote a PNG that does not start with IHDR');
  return Buffer.concat([png.subarray(0, IHDR_END), ...chunks, png.subarray(IHDR_END)]);
}
