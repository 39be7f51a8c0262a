/**
 * The node contract: one typed definition per node type — inputs (with widget kinds, defaults and ranges),
 * outputs, category, description and one `execute` function. Validation, `/api/object_info` and the editor's
 * widgets are all derived from these definitions.
 */
import type { Image8 } from '../engine/image/index.ts';
import type { Json } from '../engine/json.ts';
import type { NodeEnv } from './env.ts';

/** Types of values that travel along links (ComfyUI's socket types plus our LoRA stack). */
export type SocketType = 'MODEL' | 'CLIP' | 'VAE' | 'CONDITIONING' | 'LATENT' | 'IMAGE' | 'MASK' | 'LORA_STACK' | 'STRING' | 'INT' | 'FLOAT';

interface InputCommon {
  readonly tooltip?: string;
  /** Declared under `optional` in object_info: may be absent. */
  readonly optional?: boolean;
}

export interface IntInput extends InputCommon {
  readonly kind: 'INT';
  readonly default: number;
  readonly min: number | bigint;
  readonly max: number | bigint;
  readonly step?: number;
  /** Seeds: 64-bit, parsed losslessly, with the editor's control-after-generate widget. */
  readonly seed?: boolean;
}

export interface FloatInput extends InputCommon {
  readonly kind: 'FLOAT';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly step: number;
  readonly round?: number;
}

export interface StringInput extends InputCommon {
  readonly kind: 'STRING';
  readonly default: string;
  readonly multiline?: boolean;
  readonly dynamicPrompts?: boolean;
}

export interface BooleanInput extends InputCommon {
  readonly kind: 'BOOLEAN';
  readonly default: boolean;
  readonly labelOn?: string;
  readonly labelOff?: string;
}

export interface ComboInput extends InputCommon {
  readonly kind: 'COMBO';
  /** Fixed options, or a function listing files in a models folder at the time of asking. */
  readonly options: readonly string[] | ((env: NodeEnv) => readonly string[]);
  readonly default?: string;
  /** LoadImage-style upload button in the editor. */
  readonly imageUpload?: boolean;
  /** Values not in the list are accepted when `validate` says so (e.g. images uploaded after startup). */
  readonly allowUnlisted?: boolean;
}

export interface SocketInput extends InputCommon {
  readonly kind: 'SOCKET';
  readonly type: SocketType;
}

export type InputSpec = IntInput | FloatInput | StringInput | BooleanInput | ComboInput | SocketInput;

export interface OutputSpec {
  readonly name: string;
  readonly type: SocketType;
  readonly tooltip?: string;
}

/** What the executor hands a node besides its inputs. */
export interface NodeContext {
  readonly env: NodeEnv;
  readonly nodeId: string;
  readonly promptId: string;
  /** The whole API-format prompt as submitted (for metadata embedded in images). */
  readonly prompt: Json;
  /** The prompt as the lossless JSON text that was submitted. */
  readonly promptText: string;
  /** `extra_data.extra_pnginfo` (the editor sends `{ workflow }`). */
  readonly extraPngInfo: Record<string, Json>;
  /** Reports progress (sampler steps); may carry a small preview image. Throws when interrupted. */
  progress(value: number, max: number, preview?: Image8): void;
  /** Throws InterruptedError when an interrupt was requested. */
  checkInterrupt(): void;
  log(message: string): void;
}

export interface NodeResult {
  readonly outputs: readonly unknown[];
  /** Shown in the editor and stored in history (ComfyUI's `ui` dict, e.g. `{ images: [...] }`). */
  readonly ui?: Record<string, Json>;
}

export interface NodeDefinition {
  readonly name: string;
  readonly displayName: string;
  readonly category: string;
  readonly description: string;
  /** Ordered as the editor shows them (object key order). */
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly outputs: readonly OutputSpec[];
  /** Output nodes are where execution starts from (SaveImage, PreviewImage, …). */
  readonly outputNode?: boolean;
  execute(inputs: Record<string, unknown>, ctx: NodeContext): Promise<NodeResult>;
  /**
   * Extra cache key from constant inputs (ComfyUI's IS_CHANGED): e.g. a file's hash. `NaN` forces
   * re-execution every time.
   */
  fingerprint?(inputs: Record<string, unknown>, env: NodeEnv): string | number | undefined;
  /** Custom validation of constant inputs: a message when invalid. */
  validate?(inputs: Record<string, unknown>, env: NodeEnv): string | undefined;
}

export function defineNode(def: NodeDefinition): NodeDefinition {
  return def;
}
