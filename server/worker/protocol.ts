/** Messages between the main thread (HTTP, sockets, CLI) and the engine worker. */
import type { Json } from '../../engine/json.ts';
import type { EnvConfig } from '../config.ts';
import type { ExecutionResult } from '../executor/executor.ts';

export interface WorkerConfig extends EnvConfig {
  readonly provider: string;
  /** Int32Array over this buffer: [0] = interrupt requested. */
  readonly interruptFlag: SharedArrayBuffer;
}

export type ToWorker =
  | {
      readonly type: 'execute';
      readonly promptId: string;
      /** Lossless JSON text of the API prompt. */
      readonly promptText: string;
      /** Lossless JSON text of extra_pnginfo (the editor's workflow). */
      readonly extraPngInfoText?: string;
      readonly targets?: readonly string[];
    }
  | { readonly type: 'free'; readonly unloadModels: boolean; readonly freeMemory: boolean };

export type EngineEvent =
  | { readonly name: 'execution_start' }
  | { readonly name: 'execution_cached'; readonly nodes: string[] }
  | { readonly name: 'executing'; readonly node: string }
  | { readonly name: 'progress'; readonly node: string; readonly value: number; readonly max: number }
  | { readonly name: 'preview'; readonly node: string; readonly width: number; readonly height: number; readonly jpeg: Uint8Array }
  | { readonly name: 'executed'; readonly node: string; readonly output: Record<string, Json> };

export type FromWorker =
  | { readonly type: 'ready'; readonly provider: string; readonly providerNote?: string }
  | { readonly type: 'event'; readonly promptId: string; readonly event: EngineEvent }
  | { readonly type: 'done'; readonly promptId: string; readonly result: ExecutionResult }
  | { readonly type: 'freed' }
  | { readonly type: 'fatal'; readonly message: string };
