/**
 * Images in and out of the engine: 8-bit pixels ⇄ ComfyUI's float tensors (with its exact rounding), PNG
 * encoding with `prompt`/`workflow`/`parameters` text chunks, tolerant-but-safe reading of those chunks,
 * decoding of uploaded images, A1111 infotext, and cheap latent previews.
 */
export type { FloatTensor, Image8 } from './types.ts';
export { imageTensorToImages, imageTensorToVaeInput, imageToComfyTensors, vaeOutputToImageTensor } from './convert.ts';
export { decodeImage } from './decode.ts';
export { encodePng, type PngOptions } from './png-encode.ts';
export { isPng } from './png-chunks.ts';
export { readPngText, MAX_INFLATED_TEXT_BYTES } from './png-text.ts';
export { comfyPngText, escapeJsonNonAscii, type ComfyPngTextInput } from './comfy-text.ts';
export {
  formatA1111Parameters,
  parseA1111Parameters,
  type A1111Generation,
  type A1111Parameters,
} from './a1111.ts';
export { a1111SamplerName, a1111ScheduleType } from './a1111-names.ts';
export {
  latentPreviewRgb,
  encodeJpegPreview,
  SD15_LATENT_RGB,
  SDXL_LATENT_RGB,
  type LatentRgbFactors,
} from './preview.ts';
