/**
 * LoRA nodes: ComfyUI's LoraLoader / LoraLoaderModelOnly, and ours — an advanced loader (component, block
 * group, per-block and per-step strengths), a stack, prompt tags, an info node, and save nodes for combine and
 * bake. Loaders only record specs on the MODEL/CLIP values: weights change when a sampler or encoder runs.
 */
import { basename, join } from 'node:path';
import { InvalidInputError } from '../engine/errors.ts';
import {
  appendTriggerWords,
  bakeCheckpoint,
  combineLoras,
  extractLoraTags,
  fileStamp,
  formatLoraInspection,
  inspectLora,
  parseLoraSpec,
  resolveLoraName,
  sharedLoraCache,
  triggerWords,
  type LoraSpec,
} from '../engine/lora/index.ts';
import { encodePrompt } from '../engine/pipeline/conditioning.ts';
import { folderPath, listFiles, type NodeEnv } from './env.ts';
import { clipLoras } from './core/conditioning.ts';
import { defineNode, type InputSpec } from './types.ts';
import type { ClipValue, ConditioningValue, ModelValue } from './values.ts';

const NONE = 'None';
const strength = (def: number, tooltip: string): InputSpec => ({ kind: 'FLOAT', default: def, min: -100, max: 100, step: 0.01, tooltip });
const loraName: InputSpec = { kind: 'COMBO', options: (env) => listFiles(env, 'loras'), tooltip: 'A LoRA file in the loras folder.' };

/** A spec for a LoRA chosen in a combo, with options written as in a prompt tag (after the name). */
export function specFor(name: string, options: string): LoraSpec {
  const rest = options.trim();
  const parsed = parseLoraSpec(rest ? `_:${rest}` : '_');
  return { ...parsed, name, text: rest ? `${name}:${rest}` : name };
}

/** Cache key part of a LoRA file (size and mtime): a re-saved file makes the nodes downstream run again. */
function loraStamp(env: NodeEnv, name: string): string {
  try {
    return fileStamp(resolveLoraName(name, env.folders.models.loras));
  } catch {
    return `missing:${name}`;
  }
}

function withLora<T extends { loras: readonly LoraSpec[] }>(value: T, spec: LoraSpec): T {
  return { ...value, loras: [...value.loras, spec] };
}

/** The spec limited to its text-encoder or its UNet part (bake merges both parts of a MODEL/CLIP pair). */
function only(spec: LoraSpec, part: 'unet' | 'te'): LoraSpec {
  const zero = part === 'unet' ? { te: 0, te1: 0, te2: 0 } : { unet: 0, in: 0, mid: 0, out: 0 };
  return { ...spec, options: { ...spec.options, ...zero } };
}

export const LoraLoader = defineNode({
  name: 'LoraLoader',
  displayName: 'Load LoRA',
  category: 'loaders',
  description: 'Applies a LoRA to the model (UNet) and the CLIP (text encoder) with separate strengths.',
  inputs: {
    model: { kind: 'SOCKET', type: 'MODEL' },
    clip: { kind: 'SOCKET', type: 'CLIP' },
    lora_name: loraName,
    strength_model: strength(1, 'How strongly the UNet is changed (0 = not at all, negative = inverted).'),
    strength_clip: strength(1, 'How strongly the text encoder is changed.'),
  },
  outputs: [
    { name: 'MODEL', type: 'MODEL' },
    { name: 'CLIP', type: 'CLIP' },
  ],
  fingerprint: (inputs, env) => loraStamp(env, String(inputs.lora_name)),
  async execute(inputs) {
    const [model, clip] = [inputs.model as ModelValue, inputs.clip as ClipValue];
    const [sm, sc] = [inputs.strength_model as number, inputs.strength_clip as number];
    if (sm === 0 && sc === 0) return { outputs: [model, clip] };
    const spec = specFor(inputs.lora_name as string, `unet=${sm}:te=${sc}`);
    return { outputs: [withLora(model, spec), withLora(clip, spec)] };
  },
});

export const LoraLoaderModelOnly = defineNode({
  name: 'LoraLoaderModelOnly',
  displayName: 'Load LoRA (model only)',
  category: 'loaders',
  description: 'Applies a LoRA to the model (UNet) only.',
  inputs: { model: { kind: 'SOCKET', type: 'MODEL' }, lora_name: loraName, strength_model: strength(1, 'How strongly the UNet is changed.') },
  outputs: [{ name: 'MODEL', type: 'MODEL' }],
  fingerprint: (inputs, env) => loraStamp(env, String(inputs.lora_name)),
  async execute(inputs) {
    const model = inputs.model as ModelValue;
    const sm = inputs.strength_model as number;
    if (sm === 0) return { outputs: [model] };
    return { outputs: [withLora(model, specFor(inputs.lora_name as string, `unet=${sm}:te=0`))] };
  },
});

const optionText = (tooltip: string): InputSpec => ({ kind: 'STRING', default: '', tooltip });

export const LoraLoaderAdvanced = defineNode({
  name: 'LoraLoaderAdvanced',
  displayName: 'Load LoRA (advanced)',
  category: 'loaders',
  description:
    'Strengths per component (te / unet), per UNet block group (in / mid / out), per block (blocks=) and per ' +
    'sampling step (0.1@1,0.6@6 or fractions 0.2@0.5). Empty fields follow the chain te → unet → in/mid/out.',
  inputs: {
    model: { kind: 'SOCKET', type: 'MODEL' },
    clip: { kind: 'SOCKET', type: 'CLIP' },
    lora_name: loraName,
    strength: { kind: 'STRING', default: '1', tooltip: 'Overall strength, or a step schedule like 0.2@0,1@0.5.' },
    te: optionText('Text-encoder strength (SDXL: both encoders).'),
    unet: optionText('UNet strength (default: the overall strength).'),
    in: optionText('Down blocks (and conv_in / time embedding).'),
    mid: optionText('Middle block.'),
    out: optionText('Up blocks (and the output convolution).'),
    blocks: optionText('One factor per UNet block in kohya order (25 for SD1/SD2, 19 for SDXL), optionally led by a text-encoder factor.'),
  },
  outputs: [
    { name: 'MODEL', type: 'MODEL' },
    { name: 'CLIP', type: 'CLIP' },
  ],
  fingerprint: (inputs, env) => loraStamp(env, String(inputs.lora_name)),
  async execute(inputs) {
    const parts = [String(inputs.strength).trim()].filter(Boolean);
    for (const key of ['te', 'unet', 'in', 'mid', 'out', 'blocks']) {
      const v = String(inputs[key] ?? '').trim();
      if (v) parts.push(`${key}=${v}`);
    }
    const spec = specFor(inputs.lora_name as string, parts.join(':'));
    return { outputs: [withLora(inputs.model as ModelValue, spec), withLora(inputs.clip as ClipValue, spec)] };
  },
});

export const LoraStack = defineNode({
  name: 'LoraStack',
  displayName: 'LoRA Stack',
  category: 'loaders',
  description: 'Up to three LoRAs, each with a strength or prompt-tag options (e.g. "0.8:te=0:out=0.5"); chain stacks through lora_stack.',
  inputs: {
    lora_1: { kind: 'COMBO', options: (env) => [NONE, ...listFiles(env, 'loras')] },
    options_1: { kind: 'STRING', default: '1' },
    lora_2: { kind: 'COMBO', options: (env) => [NONE, ...listFiles(env, 'loras')] },
    options_2: { kind: 'STRING', default: '1' },
    lora_3: { kind: 'COMBO', options: (env) => [NONE, ...listFiles(env, 'loras')] },
    options_3: { kind: 'STRING', default: '1' },
    lora_stack: { kind: 'SOCKET', type: 'LORA_STACK', optional: true },
  },
  outputs: [{ name: 'LORA_STACK', type: 'LORA_STACK' }],
  fingerprint: (inputs, env) => [1, 2, 3].map((i) => String(inputs[`lora_${i}`])).filter((n) => n !== NONE).map((n) => loraStamp(env, n)).join(','),
  async execute(inputs) {
    const stack: LoraSpec[] = [...((inputs.lora_stack as LoraSpec[] | undefined) ?? [])];
    for (const i of [1, 2, 3]) {
      const name = inputs[`lora_${i}`] as string;
      if (name !== NONE) stack.push(specFor(name, String(inputs[`options_${i}`] ?? '')));
    }
    return { outputs: [stack] };
  },
});

export const ApplyLoraStack = defineNode({
  name: 'ApplyLoraStack',
  displayName: 'Apply LoRA Stack',
  category: 'loaders',
  description: 'Applies every LoRA of a stack to the model and the CLIP, in order.',
  inputs: { model: { kind: 'SOCKET', type: 'MODEL' }, clip: { kind: 'SOCKET', type: 'CLIP' }, lora_stack: { kind: 'SOCKET', type: 'LORA_STACK' } },
  outputs: [
    { name: 'MODEL', type: 'MODEL' },
    { name: 'CLIP', type: 'CLIP' },
  ],
  async execute(inputs) {
    let model = inputs.model as ModelValue;
    let clip = inputs.clip as ClipValue;
    for (const spec of inputs.lora_stack as LoraSpec[]) {
      model = withLora(model, spec);
      clip = withLora(clip, spec);
    }
    return { outputs: [model, clip] };
  },
});

/** Trigger words of a LoRA file (metadata, modelspec, civitai sidecar). */
function triggersOf(path: string): readonly string[] {
  return triggerWords(path, sharedLoraCache.get(path).metadata).words;
}

export const LoraPromptEncode = defineNode({
  name: 'LoraPromptEncode',
  displayName: 'CLIP Text Encode with LoRA tags',
  category: 'conditioning',
  description:
    'Finds <lora:name:strength:te=…:unet=…:in=…:mid=…:out=…> tags in the prompt, applies those LoRAs to the model and CLIP, ' +
    'and encodes the prompt without the tags (optionally with the LoRAs\' trigger words appended).',
  inputs: {
    model: { kind: 'SOCKET', type: 'MODEL' },
    clip: { kind: 'SOCKET', type: 'CLIP' },
    text: { kind: 'STRING', default: '', multiline: true, dynamicPrompts: true },
    append_trigger_words: { kind: 'BOOLEAN', default: false, tooltip: "Add each LoRA's trigger words to the prompt." },
  },
  outputs: [
    { name: 'MODEL', type: 'MODEL' },
    { name: 'CLIP', type: 'CLIP' },
    { name: 'CONDITIONING', type: 'CONDITIONING' },
  ],
  fingerprint: (inputs, env) => extractLoraTags(String(inputs.text)).specs.map((s) => loraStamp(env, s.name)).join(','),
  async execute(inputs, ctx) {
    const found = extractLoraTags(inputs.text as string);
    if (found.errors.length) throw found.errors[0];
    const dir = ctx.env.folders.models.loras;
    const specs = found.specs.map((s) => ({ ...s, name: resolveLoraName(s.name, dir) }));
    let model = inputs.model as ModelValue;
    let clip = inputs.clip as ClipValue;
    for (const spec of specs) {
      model = withLora(model, spec);
      clip = withLora(clip, spec);
    }
    const prompt = inputs.append_trigger_words ? specs.reduce((p, s) => appendTriggerWords(p, triggersOf(s.name)), found.prompt) : found.prompt;
    const cond = await encodePrompt(clip.model, prompt, { lastLayer: clip.lastLayer, loras: clipLoras(clip, ctx.env), emphasis: ctx.env.settings.emphasis });
    const conditioning: ConditioningValue = [{ cond, text: prompt, clip }];
    return { outputs: [model, clip, conditioning] };
  },
});

export const LoraInfo = defineNode({
  name: 'LoraInfo',
  displayName: 'LoRA Info',
  category: 'loaders',
  description: 'Shows a LoRA\'s trigger words, base model, families, rank and metadata; outputs the trigger words as text.',
  inputs: { lora_name: loraName },
  outputs: [
    { name: 'trigger_words', type: 'STRING' },
    { name: 'info', type: 'STRING' },
  ],
  outputNode: true,
  fingerprint: (inputs, env) => loraStamp(env, String(inputs.lora_name)),
  async execute(inputs, ctx) {
    // Resolved as the loaders resolve it, so the info is about the file they would apply.
    const path = resolveLoraName(inputs.lora_name as string, ctx.env.folders.models.loras);
    const info = inspectLora(path);
    const words = info.triggerWords.words.join(', ');
    const text = formatLoraInspection(info);
    return { outputs: [words, text], ui: { text: [words, text] } };
  },
});

/** A file name for a save node: plain name inside its folder, `.safetensors` added. */
function outputFile(env: NodeEnv, folder: 'loras' | 'checkpoints', name: string): string {
  const clean = name.trim().replace(/\.safetensors$/i, '');
  if (!clean || /[\\/]|\.\./.test(clean)) throw new InvalidInputError(`"${name}" is not a plain file name for the ${folder} folder`);
  return join(folderPath(env, folder), `${clean}.safetensors`);
}

export const LoraCombineSave = defineNode({
  name: 'LoraCombineSave',
  displayName: 'Save Combined LoRA',
  category: 'loaders',
  description: 'Writes the weighted sum of a LoRA stack as one kohya-format LoRA: exactly (ranks concatenated) or by SVD to a rank.',
  inputs: {
    lora_stack: { kind: 'SOCKET', type: 'LORA_STACK' },
    mode: { kind: 'COMBO', options: ['exact', 'rank'], tooltip: 'exact concatenates ranks; rank approximates to `rank` by SVD.' },
    rank: { kind: 'INT', default: 32, min: 1, max: 1024 },
    filename: { kind: 'STRING', default: 'combined' },
  },
  outputs: [],
  outputNode: true,
  async execute(inputs, ctx) {
    const dir = ctx.env.folders.models.loras;
    const out = outputFile(ctx.env, 'loras', inputs.filename as string);
    const mode = inputs.mode === 'exact' ? ({ exact: true } as const) : { rank: inputs.rank as number };
    const result = combineLoras(inputs.lora_stack as LoraSpec[], mode, out, { lorasDir: dir });
    return { outputs: [], ui: { text: [`${basename(out)}: ${JSON.stringify(result)}`] } };
  },
});

export const CheckpointBakeSave = defineNode({
  name: 'CheckpointBakeSave',
  displayName: 'Save Checkpoint with LoRAs baked in',
  category: 'loaders',
  description: "Writes the model's checkpoint with the LoRAs on MODEL (UNet strengths) and CLIP (text-encoder strengths) merged, same layout and dtypes.",
  inputs: { model: { kind: 'SOCKET', type: 'MODEL' }, clip: { kind: 'SOCKET', type: 'CLIP' }, filename: { kind: 'STRING', default: 'baked' } },
  outputs: [],
  outputNode: true,
  async execute(inputs, ctx) {
    const model = inputs.model as ModelValue;
    const clip = inputs.clip as ClipValue;
    if (model.model !== clip.model) throw new InvalidInputError('MODEL and CLIP come from different checkpoints; bake needs both from the same one');
    const specs = [...model.loras.map((s) => only(s, 'unet')), ...clip.loras.map((s) => only(s, 'te'))];
    const out = outputFile(ctx.env, 'checkpoints', inputs.filename as string);
    const result = bakeCheckpoint(model.model.checkpoint.path, specs, out, { lorasDir: ctx.env.folders.models.loras });
    return { outputs: [], ui: { text: [`${basename(out)}: ${result.changedTensors} tensors changed, ${result.copiedTensors} copied`] } };
  },
});
