/** Decoding user images (PNG, JPEG, WebP, ... anything sharp reads) to 8-bit RGB or RGBA. */
import sharp from 'sharp';
import { FileFormatError } from '../errors.ts';
import type { Image8 } from './types.ts';

/**
 * The first frame of `bytes` as 8-bit sRGB, with alpha kept when the file has any (ComfyUI's LoadImage derives
 * its MASK from it) and EXIF orientation applied (as LoadImage's exif_transpose). Grey, palette, CMYK and
 * 16-bit inputs are converted. Undecodable input is a FileFormatError naming `source`.
 */
export async function decodeImage(bytes: Uint8Array, source = 'image'): Promise<Image8> {
  const { data, info } = await sharp(bytes, { autoOrient: true })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
    .catch((err: unknown) => {
      throw new FileFormatError(source, `cannot decode the image (${(err as Error).message}); use a PNG, JPEG or WebP file`);
    });
  if (info.channels !== 3 && info.channels !== 4) {
    throw new FileFormatError(source, `decoded to ${info.channels} channels; expected RGB or RGBA`);
  }
  return { width: info.width, height: info.height, channels: info.channels, data };
}
