import { statSync } from 'node:fs';
import { defineNode } from '../types.ts';
import { listFiles, resolveInFolder } from '../env.ts';
import type { ClipValue, ModelValue, VaeValue } from '../values.ts';

export const CheckpointLoaderSimple = defineNode({
  name: 'CheckpointLoaderSimple',
  displayName: 'Load Checkpoint',
  category: 'loaders',
  description: 'Loads a Stable Diffusion checkpoint (.safetensors, original single-file layout) from the checkpoints folder.',
  inputs: {
    ckpt_name: { kind: 'COMBO', options: (env) => listFiles(env, 'checkpoints'), tooltip: 'The checkpoint (model) to load.' },
  },
  outputs: [
    { name: 'MODEL', type: 'MODEL', tooltip: 'The denoising UNet.' },
    { name: 'CLIP', type: 'CLIP', tooltip: 'The text encoder(s).' },
    { name: 'VAE', type: 'VAE', tooltip: 'The image autoencoder.' },
  ],
  fingerprint(inputs, env) {
    // A checkpoint re-saved under the same name is loaded again.
    const stat = statSync(resolveInFolder(env, 'checkpoints', String(inputs.ckpt_name)));
    return `${stat.size}:${stat.mtimeMs}`;
  },
  async execute(inputs, ctx) {
    const name = inputs.ckpt_name as string;
    const model = await ctx.env.models.load(resolveInFolder(ctx.env, 'checkpoints', name));
    const outputs: [ModelValue, ClipValue, VaeValue] = [{ model, name, loras: [] }, { model, name, loras: [] }, { model, name }];
    return { outputs };
  },
});
