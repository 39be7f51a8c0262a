import { decodeLatent, encodeImage } from '../../engine/pipeline/vae.ts';
import { defineNode } from '../types.ts';
import type { ImageValue, LatentValue, VaeValue } from '../values.ts';

export const EmptyLatentImage = defineNode({
  name: 'EmptyLatentImage',
  displayName: 'Empty Latent Image',
  category: 'latent',
  description: 'A batch of empty latents to start text-to-image from.',
  inputs: {
    width: { kind: 'INT', default: 512, min: 16, max: 16384, step: 8, tooltip: 'Width in pixels.' },
    height: { kind: 'INT', default: 512, min: 16, max: 16384, step: 8, tooltip: 'Height in pixels.' },
    batch_size: { kind: 'INT', default: 1, min: 1, max: 4096, tooltip: 'Images per batch.' },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  async execute(inputs) {
    const [w, h, b] = [inputs.width as number, inputs.height as number, inputs.batch_size as number];
    const shape = [b, 4, Math.floor(h / 8), Math.floor(w / 8)];
    const value: LatentValue = { samples: { shape, data: new Float32Array(shape.reduce((x, y) => x * y, 1)) } };
    return { outputs: [value] };
  },
});

export const VAEDecode = defineNode({
  name: 'VAEDecode',
  displayName: 'VAE Decode',
  category: 'latent',
  description: 'Decodes latents into images.',
  inputs: { samples: { kind: 'SOCKET', type: 'LATENT' }, vae: { kind: 'SOCKET', type: 'VAE' } },
  outputs: [{ name: 'IMAGE', type: 'IMAGE' }],
  async execute(inputs) {
    const image: ImageValue = await decodeLatent((inputs.vae as VaeValue).model, (inputs.samples as LatentValue).samples);
    return { outputs: [image] };
  },
});

export const VAEEncode = defineNode({
  name: 'VAEEncode',
  displayName: 'VAE Encode',
  category: 'latent',
  description: 'Encodes images into latents (for image-to-image with denoise below 1).',
  inputs: { pixels: { kind: 'SOCKET', type: 'IMAGE' }, vae: { kind: 'SOCKET', type: 'VAE' } },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  async execute(inputs) {
    const value: LatentValue = { samples: await encodeImage((inputs.vae as VaeValue).model, inputs.pixels as ImageValue) };
    return { outputs: [value] };
  },
});
