import { encodePrompt } from '../../engine/pipeline/conditioning.ts';
import type { LoraContext } from '../../engine/pipeline/loras.ts';
import type { NodeEnv } from '../env.ts';
import { defineNode } from '../types.ts';
import type { ClipValue, ConditioningValue } from '../values.ts';

/** The LoRA context for a CLIP value's stacked LoRAs (undefined when none). */
export function clipLoras(clip: ClipValue, env: NodeEnv): LoraContext | undefined {
  return clip.loras.length ? { specs: clip.loras, lorasDir: env.folders.models.loras, method: env.settings.loraApplyMethod } : undefined;
}

export const CLIPTextEncode = defineNode({
  name: 'CLIPTextEncode',
  displayName: 'CLIP Text Encode (Prompt)',
  category: 'conditioning',
  description: 'Encodes a prompt with the text encoder. Emphasis: (word:1.2), (word), [word]; BREAK starts a new 77-token chunk.',
  inputs: {
    text: { kind: 'STRING', default: '', multiline: true, dynamicPrompts: true, tooltip: 'The text to encode.' },
    clip: { kind: 'SOCKET', type: 'CLIP', tooltip: 'The text encoder to use.' },
  },
  outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING' }],
  async execute(inputs, ctx) {
    const clip = inputs.clip as ClipValue;
    const text = inputs.text as string;
    const cond = await encodePrompt(clip.model, text, { lastLayer: clip.lastLayer, loras: clipLoras(clip, ctx.env), emphasis: ctx.env.settings.emphasis });
    const value: ConditioningValue = [{ cond, text, clip }];
    return { outputs: [value] };
  },
});

export const CLIPSetLastLayer = defineNode({
  name: 'CLIPSetLastLayer',
  displayName: 'CLIP Set Last Layer',
  category: 'conditioning',
  description: 'Stops the text encoder at an earlier layer ("clip skip"): -1 is the last layer, -2 the one before.',
  inputs: {
    clip: { kind: 'SOCKET', type: 'CLIP' },
    stop_at_clip_layer: { kind: 'INT', default: -1, min: -24, max: -1, step: 1 },
  },
  outputs: [{ name: 'CLIP', type: 'CLIP' }],
  async execute(inputs) {
    const clip = inputs.clip as ClipValue;
    const value: ClipValue = { ...clip, lastLayer: inputs.stop_at_clip_layer as number };
    return { outputs: [value] };
  },
});
