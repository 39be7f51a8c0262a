/** The values that travel along links between nodes (what each socket type carries). */
import type { LoraSpec } from '../engine/lora/index.ts';
import type { Conditioning } from '../engine/pipeline/conditioning.ts';
import type { LoadedModel } from '../engine/runtime/loaded-model.ts';
import type { FloatTensor } from '../engine/tensor/tensor.ts';

/** MODEL: a checkpoint's UNet plus the LoRAs stacked on it (applied when a sampler runs). */
export interface ModelValue {
  readonly model: LoadedModel;
  /** The checkpoint's file name, as chosen in the loader. */
  readonly name: string;
  /** LoRAs stacked by loader nodes, in order (their UNet strengths count here). */
  readonly loras: readonly LoraSpec[];
}

/** CLIP: a checkpoint's text encoder(s), the LoRAs stacked on them, and the chosen last layer. */
export interface ClipValue {
  readonly model: LoadedModel;
  readonly name: string;
  /** CLIPSetLastLayer's value; undefined = the family's default. */
  readonly lastLayer?: number;
  /** LoRAs stacked by loader nodes, in order (their text-encoder strengths count here). */
  readonly loras: readonly LoraSpec[];
}

export interface VaeValue {
  readonly model: LoadedModel;
  readonly name: string;
}

/** CONDITIONING: ComfyUI's list of conditionings; our encoders make one entry. */
export interface ConditioningEntry {
  readonly cond: Conditioning;
  /** The prompt text it was encoded from (image metadata). */
  readonly text: string;
  readonly clip: ClipValue;
}
export type ConditioningValue = readonly ConditioningEntry[];

/** LATENT: model-space latents [B, C, h, w]. */
export interface LatentValue {
  readonly samples: FloatTensor;
  readonly batchIndex?: readonly number[];
}

/** IMAGE [B, H, W, C] in 0..1. */
export type ImageValue = FloatTensor;
