/**
 * What an image's A1111-style `parameters` text says, derived from the API prompt that made it: follow the
 * saved image back through VAEDecode to the sampler, and from there to the prompts, the latent size, the
 * checkpoint and any LoRA loaders on the way.
 */
import type { A1111Generation } from '../engine/image/index.ts';
import type { Json } from '../engine/json.ts';

type ApiNode = { class_type?: string; inputs?: Record<string, Json> };
type ApiPrompt = Record<string, ApiNode>;

function linked(prompt: ApiPrompt, node: ApiNode | undefined, input: string): ApiNode | undefined {
  const v = node?.inputs?.[input];
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' ? prompt[v[0]] : undefined;
}

function upstream(prompt: ApiPrompt, node: ApiNode | undefined, input: string, accept: (n: ApiNode) => boolean, via: string[]): ApiNode | undefined {
  let current = linked(prompt, node, input);
  for (let hops = 0; current && hops < 64; hops++) {
    if (accept(current)) return current;
    const next = via.map((name) => linked(prompt, current, name)).find(Boolean);
    current = next;
  }
  return undefined;
}

const SAMPLERS = new Set(['KSampler', 'KSamplerAdvanced']);
const TEXT = new Set(['CLIPTextEncode', 'LoraPromptEncode']);

export function describeGeneration(promptJson: Json, imagesNodeId: string): A1111Generation | undefined {
  if (typeof promptJson !== 'object' || promptJson === null || Array.isArray(promptJson)) return undefined;
  const prompt = promptJson as unknown as ApiPrompt;
  const saver = prompt[imagesNodeId];
  const decode = upstream(prompt, saver, 'images', (n) => n.class_type === 'VAEDecode', ['images', 'image']);
  const sampler = upstream(prompt, decode, 'samples', (n) => SAMPLERS.has(n.class_type ?? ''), ['samples', 'latent']);
  if (!sampler?.inputs) return undefined;
  const i = sampler.inputs;
  const textOf = (input: string) => {
    const node = upstream(prompt, sampler, input, (n) => TEXT.has(n.class_type ?? ''), ['conditioning', 'conditioning_1']);
    return typeof node?.inputs?.text === 'string' ? node.inputs.text : '';
  };
  const latent = upstream(prompt, sampler, 'latent_image', (n) => n.class_type === 'EmptyLatentImage', ['samples']);
  const checkpoint = upstream(prompt, sampler, 'model', (n) => n.class_type === 'CheckpointLoaderSimple', ['model']);
  const seed = i.seed ?? i.noise_seed;
  const num = (v: Json | undefined, d: number) => (typeof v === 'number' ? v : d);
  return {
    positive: textOf('positive'),
    negative: textOf('negative'),
    steps: num(i.steps, 20),
    sampler: String(i.sampler_name ?? 'euler'),
    scheduler: String(i.scheduler ?? 'normal'),
    cfg: num(i.cfg, 8),
    seed: typeof seed === 'bigint' ? seed : BigInt(Math.trunc(num(seed as Json, 0))),
    width: num(latent?.inputs?.width, 512),
    height: num(latent?.inputs?.height, 512),
    model: typeof checkpoint?.inputs?.ckpt_name === 'string' ? checkpoint.inputs.ckpt_name.replace(/\.safetensors$/, '') : undefined,
    denoise: typeof i.denoise === 'number' ? i.denoise : undefined,
  };
}
