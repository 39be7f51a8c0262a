/** Latents ⇄ pixels through the checkpoint's VAE, with the family's latent scaling factor. */
import { InvalidInputError } from '../errors.ts';
import { imageTensorToVaeInput, vaeOutputToImageTensor } from '../image/index.ts';
import type { LoadedModel } from '../runtime/loaded-model.ts';
import { ort } from '../runtime/session.ts';
import type { FloatTensor } from '../tensor/tensor.ts';

/** Model-space latent [B, 4, h, w] → IMAGE [B, 8h, 8w, 3] in 0..1. */
export async function decodeLatent(model: LoadedModel, latent: FloatTensor): Promise<FloatTensor> {
  const vae = model.config.vae;
  if (!vae) throw new InvalidInputError(`${model.checkpoint.path} has no VAE to decode with`);
  if (latent.shape.length !== 4 || latent.shape[1] !== vae.latentChannels) {
    throw new InvalidInputError(`cannot decode a latent of shape [${latent.shape.join(', ')}]: this VAE takes ${vae.latentChannels} channels`);
  }
  const scaled = latent.data.map((v) => v / vae.scalingFactor);
  const out = await model.vaeDecoder().run({ latent: new ort.Tensor('float32', scaled, [...latent.shape]) });
  return vaeOutputToImageTensor({ shape: out.decoded.dims as number[], data: out.decoded.data as Float32Array });
}

/**
 * IMAGE [B, H, W, C] → model-space latent. Like ComfyUI's VAEEncode, sides are cropped (centred) to multiples
 * of 8 and the posterior's mean is used, so encoding is deterministic.
 */
export async function encodeImage(model: LoadedModel, image: FloatTensor): Promise<FloatTensor> {
  const vae = model.config.vae;
  if (!vae) throw new InvalidInputError(`${model.checkpoint.path} has no VAE to encode with`);
  const [b, height, width, c] = image.shape;
  const factor = 2 ** (vae.channelMult.length - 1);
  const h = Math.floor(height / factor) * factor;
  const w = Math.floor(width / factor) * factor;
  if (h === 0 || w === 0) throw new InvalidInputError(`an image of ${width}x${height} is too small to encode (at least ${factor}x${factor})`);
  let cropped = image;
  if (h !== height || w !== width) {
    const [y0, x0] = [Math.floor((height % factor) / 2), Math.floor((width % factor) / 2)];
    const data = new Float32Array(b * h * w * c);
    for (let n = 0; n < b; n++) {
      for (let y = 0; y < h; y++) {
        const src = ((n * height + y + y0) * width + x0) * c;
        data.set(image.data.subarray(src, src + w * c), ((n * h + y) * w) * c);
      }
    }
    cropped = { shape: [b, h, w, c], data };
  }
  const input = imageTensorToVaeInput(cropped);
  const out = await model.vaeEncoder().run({ image: new ort.Tensor('float32', input.data, [...input.shape]) });
  return { shape: out.mean.dims as number[], data: (out.mean.data as Float32Array).map((v) => v * vae.scalingFactor) };
}
