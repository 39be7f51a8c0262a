/**
 * Workflows on the embedded demo model, built in code and run in-process through the real node graph: what
 * the picture tests and the README gallery render.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, type Image8 } from '../../engine/image/index.ts';
import { stringifyJson } from '../../engine/json.ts';
import { DEMO_CHECKPOINT } from '../../engine/models/embedded.ts';
import { NODES, type NodeEnv } from '../../nodes/index.ts';
import { Executor } from '../executor/executor.ts';
import type { ApiPrompt } from '../executor/prompt.ts';

export interface DemoLora {
  /** File name in the loras folder. */
  readonly name: string;
  /** What follows the name in a prompt tag: strength and options (`1`, `0.8:in=0`, `0@0,1@1`). */
  readonly options: string;
}

export interface DemoRequest {
  readonly prompt: string;
  readonly seed?: number;
  readonly loras?: readonly DemoLora[];
  readonly steps?: number;
  readonly cfg?: number;
  readonly sampler?: string;
  readonly scheduler?: string;
  /** Sample in two KSamplerAdvanced stages split at this step, as base → refiner workflows do. */
  readonly splitAt?: number;
}

/** The API prompt: checkpoint → LoRA loaders → encoders → KSampler → VAEDecode → SaveImage. */
export function demoPrompt(r: DemoRequest, checkpoint = DEMO_CHECKPOINT): ApiPrompt {
  const prompt: ApiPrompt = { ckpt: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: checkpoint } } };
  let model: [string, number] = ['ckpt', 0];
  let clip: [string, number] = ['ckpt', 1];
  (r.loras ?? []).forEach((lora, i) => {
    const [strength, ...rest] = lora.options.split(':');
    const options = Object.fromEntries(rest.map((o) => o.split('=') as [string, string]));
    prompt[`lora${i}`] = {
      class_type: 'LoraLoaderAdvanced',
      inputs: { model, clip, lora_name: lora.name, strength, te: options.te ?? '', unet: options.unet ?? '', in: options.in ?? '', mid: options.mid ?? '', out: options.out ?? '', blocks: options.blocks ?? '' },
    };
    model = [`lora${i}`, 0];
    clip = [`lora${i}`, 1];
  });
  prompt.pos = { class_type: 'CLIPTextEncode', inputs: { text: r.prompt, clip } };
  prompt.neg = { class_type: 'CLIPTextEncode', inputs: { text: '', clip } };
  prompt.latent = { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } };
  const sampling = {
    model,
    positive: ['pos', 0],
    negative: ['neg', 0],
    latent_image: ['latent', 0],
    steps: r.steps ?? 20,
    cfg: r.cfg ?? 6,
    sampler_name: r.sampler ?? 'ddim',
    scheduler: r.scheduler ?? 'normal',
  };
  if (r.splitAt === undefined) {
    prompt.sampler = { class_type: 'KSampler', inputs: { ...sampling, seed: r.seed ?? 1, denoise: 1 } };
  } else {
    const stage = (from: number, to: number, first: boolean) => ({
      ...sampling,
      add_noise: first ? 'enable' : 'disable',
      noise_seed: r.seed ?? 1,
      start_at_step: from,
      end_at_step: to,
      return_with_leftover_noise: first ? 'enable' : 'disable',
    });
    prompt.first = { class_type: 'KSamplerAdvanced', inputs: stage(0, r.splitAt, true) };
    prompt.sampler = { class_type: 'KSamplerAdvanced', inputs: { ...stage(r.splitAt, 10000, false), latent_image: ['first', 0] } };
  }
  prompt.decode = { class_type: 'VAEDecode', inputs: { samples: ['sampler', 0], vae: ['ckpt', 2] } };
  prompt.save = { class_type: 'SaveImage', inputs: { images: ['decode', 0], filename_prefix: 'demo' } };
  return prompt;
}

/** Runs requests one after another on one executor (loaders cached) and returns each saved PNG and its pixels. */
export async function renderDemo(env: NodeEnv, requests: readonly DemoRequest[], checkpoint = DEMO_CHECKPOINT): Promise<{ png: Buffer; image: Image8 }[]> {
  const executor = new Executor(NODES, env);
  const results: { png: Buffer; image: Image8 }[] = [];
  for (const request of requests) {
    const prompt = demoPrompt(request, checkpoint);
    const result = await executor.execute({ promptId: randomUUID(), prompt, promptText: stringifyJson(prompt) }, {}, () => false);
    if (result.status !== 'success') throw new Error(`demo render failed in ${result.failure.nodeId}: ${result.failure.message}`);
    const saved = (result.outputs.save.images as { filename: string; subfolder: string }[])[0];
    const png = readFileSync(join(env.folders.output, saved.subfolder, saved.filename));
    results.push({ png, image: await decodeImage(png) });
  }
  return results;
}
