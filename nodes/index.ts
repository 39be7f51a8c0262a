/** Every node type, by class name: the single source of truth for validation, object_info and the editor. */
import { CheckpointLoaderSimple } from './core/loaders.ts';
import { CLIPSetLastLayer, CLIPTextEncode } from './core/conditioning.ts';
import { EmptyLatentImage, VAEDecode, VAEEncode } from './core/latent.ts';
import { KSampler, KSamplerAdvanced } from './core/sampling.ts';
import { LoadImage, PreviewImage, SaveImage } from './core/image.ts';
import {
  ApplyLoraStack,
  CheckpointBakeSave,
  LoraCombineSave,
  LoraInfo,
  LoraLoader,
  LoraLoaderAdvanced,
  LoraLoaderModelOnly,
  LoraPromptEncode,
  LoraStack,
} from './lora.ts';
import type { NodeDefinition } from './types.ts';

export const NODES: ReadonlyMap<string, NodeDefinition> = new Map(
  [
    CheckpointLoaderSimple,
    CLIPTextEncode,
    CLIPSetLastLayer,
    EmptyLatentImage,
    KSampler,
    KSamplerAdvanced,
    VAEDecode,
    VAEEncode,
    LoadImage,
    SaveImage,
    PreviewImage,
    LoraLoader,
    LoraLoaderModelOnly,
    LoraLoaderAdvanced,
    LoraStack,
    ApplyLoraStack,
    LoraPromptEncode,
    LoraInfo,
    LoraCombineSave,
    CheckpointBakeSave,
  ].map((n) => [n.name, n]),
);

export type { NodeDefinition, NodeContext, NodeResult, InputSpec, OutputSpec, SocketType } from './types.ts';
export { coerceInput, comboOptions } from './coerce.ts';
export { listFiles, resolveInFolder, folderPath, splitAnnotation, isInside, realPathInside, type NodeEnv, type Folders, type NodeSettings, type LoraApplyMethod } from './env.ts';
