/**
 * Which base model a LoRA was trained for, from its metadata (`ss_base_model_version`,
 * `modelspec.architecture`, `ss_v2`), else from its keys (SDXL trainers write lora_te1_/lora_te2_, SD1/SD2
 * ones lora_te_) and shapes (the input width of the cross-attention k/v layers is the text encoder's width:
 * 768 SD1.x, 1024 SD2.x, 2048 SDXL). Checked before any tensor shape, so a LoRA for another model family is
 * reported as such, not as a pile of shape errors.
 */
import { LoraBaseModelError } from '../errors.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import type { ModelFamily } from '../models/config.ts';
import type { LoraFile, LoraModule } from './file.ts';

export interface LoraBase {
  /** sd1 / sd2 / sdxl, or another architecture's name as the metadata gives it; undefined when nothing tells. */
  readonly family: ModelFamily | string | undefined;
  readonly decidedBy: string;
}

const NAMES: Readonly<Record<string, string>> = { sd1: 'SD1.x', sd2: 'SD2.x', sdxl: 'SDXL', 'sd1/sd2': 'SD1.x or SD2.x' };

export function familyName(family: string): string {
  return NAMES[family] ?? family;
}

const CONTEXT_WIDTHS: Readonly<Record<number, ModelFamily>> = { 768: 'sd1', 1024: 'sd2', 2048: 'sdxl' };

export function baseFromMetadata(metadata: Readonly<Record<string, string>>): LoraBase | undefined {
  const version = metadata.ss_base_model_version?.trim();
  if (version) {
    const family = version.startsWith('sd_v1') ? 'sd1' : version.startsWith('sd_v2') ? 'sd2' : version.startsWith('sdxl') ? 'sdxl' : version;
    return { family, decidedBy: `metadata ss_base_model_version=${version}` };
  }
  const arch = metadata['modelspec.architecture']?.trim();
  if (arch) {
    const base = arch.split('/')[0];
    const family = base.startsWith('stable-diffusion-xl') ? 'sdxl' : base.startsWith('stable-diffusion-v2') ? 'sd2' : base.startsWith('stable-diffusion-v1') ? 'sd1' : base;
    return { family, decidedBy: `metadata modelspec.architecture=${arch}` };
  }
  if (metadata.ss_v2 === 'True') return { family: 'sd2', decidedBy: 'metadata ss_v2=True' };
  return undefined;
}

/** The base model the keys imply: SDXL's two text encoders vs SD1/SD2's one. */
function baseFromKeys(modules: readonly LoraModule[]): LoraBase | undefined {
  const two = modules.find((m) => m.component === 'te1' || m.component === 'te2');
  if (two) return { family: 'sdxl', decidedBy: `key ${two.name} names one of two text encoders` };
  const one = modules.find((m) => m.component === 'te' && !m.firstEncoder);
  if (one) return { family: 'sd1/sd2', decidedBy: `key ${one.name} names the only text encoder (lora_te_)` };
  return undefined;
}

/** Input width of a cross-attention k/v module, where its family stores it plainly. */
function crossAttentionWidth(file: LoraFile, modules: readonly LoraModule[]): { width: number; module: string } | undefined {
  for (const m of modules) {
    if (m.component !== 'unet' || !/attn2_to_[kv]$/.test(m.path)) continue;
    const entry = m.entries.get('down') ?? m.entries.get('hada_w1_b') ?? m.entries.get('diff');
    if (entry) return { width: file.shape(entry)[1], module: m.name };
  }
  return undefined;
}

/** What can be told about a LoRA's base model without a checkpoint (inspect). */
export function detectLoraBase(file: LoraFile): LoraBase {
  const stated = baseFromMetadata(file.metadata);
  if (stated) return stated;
  const cross = crossAttentionWidth(file, file.modules);
  const byWidth = cross && CONTEXT_WIDTHS[cross.width];
  if (cross && byWidth) return { family: byWidth, decidedBy: `${cross.module} takes ${cross.width}-wide text features` };
  return baseFromKeys(file.modules) ?? { family: undefined, decidedBy: 'no metadata, and the keys and shapes are not decisive' };
}

/** Throws LoraBaseModelError when the LoRA was made for another model family than the checkpoint's. */
export function checkLoraBase(file: LoraFile, checkpoint: Checkpoint, label: string): void {
  const model = checkpoint.config.family;
  const fail = (family: string, decidedBy: string): never => {
    throw new LoraBaseModelError(label, familyName(family), familyName(model), decidedBy);
  };
  const stated = baseFromMetadata(file.metadata);
  if (stated?.family && stated.family !== model) fail(stated.family, stated.decidedBy);
  const keys = baseFromKeys(file.modules);
  if (keys?.family === 'sdxl' && model !== 'sdxl') fail('sdxl', keys.decidedBy);
  if (keys?.family === 'sd1/sd2' && model === 'sdxl') fail('sd1/sd2', keys.decidedBy);
  const cross = crossAttentionWidth(file, file.modules);
  const context = checkpoint.config.unet?.contextDim;
  if (cross && context && cross.width !== context) {
    const family = CONTEXT_WIDTHS[cross.width] ?? `model with ${cross.width}-wide text features`;
    fail(family, `${cross.module} takes ${cross.width}-wide text features, this model's cross-attention takes ${context}`);
  }
}
