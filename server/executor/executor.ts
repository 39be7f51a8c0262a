/**
 * Runs an API-format prompt: only the ancestors of its output nodes, in dependency order, reusing outputs
 * cached from earlier runs when a node's input signature (its constants, fingerprint and ancestors'
 * signatures) is unchanged — so a new seed re-runs the sampler and what follows, never the loader. The
 * first error stops the run; an interrupt stops it at the next sampler step or node.
 */
import { createHash } from 'node:crypto';
import type { Image8 } from '../../engine/image/index.ts';
import { InterruptedError, LoraGraphError } from '../../engine/errors.ts';
import { stringifyJson, type Json } from '../../engine/json.ts';
import { coerceInput, type NodeDefinition, type NodeEnv } from '../../nodes/index.ts';
import { isLink, type ApiPrompt } from './prompt.ts';

export interface ExecutionEvents {
  start?(): void;
  cached?(nodeIds: string[]): void;
  executing?(nodeId: string): void;
  progress?(nodeId: string, value: number, max: number, preview?: Image8): void;
  executed?(nodeId: string, ui: Record<string, Json>): void;
}

export interface ExecutionJob {
  readonly promptId: string;
  readonly prompt: ApiPrompt;
  /** The prompt as submitted (lossless JSON text), embedded in saved images. */
  readonly promptText: string;
  readonly extraPngInfo?: Record<string, Json>;
  /** Restrict execution to these output nodes (ComfyUI's partial_execution_targets). */
  readonly targets?: readonly string[];
}

export interface ExecutionFailure {
  readonly nodeId: string;
  readonly nodeType: string;
  readonly message: string;
  readonly type: string;
  readonly traceback: string[];
  /** Nodes that completed before the failure. */
  readonly executed: string[];
}

export type ExecutionResult =
  | { status: 'success'; outputs: Record<string, Record<string, Json>>; executed: string[]; cached: string[] }
  | { status: 'error'; outputs: Record<string, Record<string, Json>>; failure: ExecutionFailure }
  | { status: 'interrupted'; outputs: Record<string, Record<string, Json>>; failure: ExecutionFailure };

interface CacheEntry {
  readonly outputs: readonly unknown[];
  readonly ui?: Record<string, Json>;
}

export class Executor {
  private cache = new Map<string, CacheEntry>();

  constructor(
    private readonly nodes: ReadonlyMap<string, NodeDefinition>,
    private readonly env: NodeEnv,
  ) {
    // Cached outputs may hold a model that is being unloaded: never hand them out again.
    env.models.onEvict(() => this.clearCache());
  }

  /** Drops every cached output (ComfyUI's /free with free_memory). */
  clearCache(): void {
    this.cache.clear();
  }

  async execute(job: ExecutionJob, events: ExecutionEvents, interrupted: () => boolean): Promise<ExecutionResult> {
    const { prompt } = job;
    const definition = (id: string) => {
      const def = this.nodes.get(prompt[id]?.class_type);
      if (!def) throw new LoraGraphError('invalid_prompt', `node ${id} has unknown type ${prompt[id]?.class_type}`);
      return def;
    };
    const targets = (job.targets ?? Object.keys(prompt)).filter((id) => prompt[id] && this.nodes.get(prompt[id].class_type)?.outputNode);
    const order = executionOrder(prompt, targets);
    const signatures = new Map<string, string>();
    for (const id of order) signatures.set(id, this.signature(id, prompt, definition(id), signatures));

    const outputs = new Map<string, readonly unknown[]>();
    const ui: Record<string, Record<string, Json>> = {};
    const executed: string[] = [];
    const cached = order.filter((id) => this.cache.has(signatures.get(id)!));
    events.start?.();
    events.cached?.(cached);
    let current = '';
    try {
      for (const id of order) {
        current = id;
        const def = definition(id);
        const hit = this.cache.get(signatures.get(id)!);
        if (hit) {
          outputs.set(id, hit.outputs);
          if (hit.ui) {
            ui[id] = hit.ui;
            events.executed?.(id, hit.ui);
          }
          continue;
        }
        if (interrupted()) throw new InterruptedError();
        events.executing?.(id);
        const inputs = this.gatherInputs(id, prompt, def, outputs);
        const result = await def.execute(inputs, {
          env: this.env,
          nodeId: id,
          promptId: job.promptId,
          prompt: prompt as unknown as Json,
          promptText: job.promptText,
          extraPngInfo: job.extraPngInfo ?? {},
          progress: (value, max, preview) => {
            events.progress?.(id, value, max, preview);
            if (interrupted()) throw new InterruptedError();
          },
          checkInterrupt: () => {
            if (interrupted()) throw new InterruptedError();
          },
          log: (message) => console.error(`[${def.name} ${id}] ${message}`),
        });
        outputs.set(id, result.outputs);
        this.cache.set(signatures.get(id)!, { outputs: result.outputs, ui: result.ui });
        executed.push(id);
        if (result.ui) {
          ui[id] = result.ui;
          events.executed?.(id, result.ui);
        }
      }
    } catch (err) {
      const failure = describeFailure(err, current, prompt[current]?.class_type ?? '', executed);
      return { status: err instanceof InterruptedError ? 'interrupted' : 'error', outputs: ui, failure };
    } finally {
      this.evictExcept(new Set(signatures.values()));
      await this.env.models.releaseRetired();
    }
    return { status: 'success', outputs: ui, executed, cached };
  }

  /** Classic cache policy: keep only what the latest prompt used. */
  private evictExcept(keep: ReadonlySet<string>): void {
    for (const key of this.cache.keys()) if (!keep.has(key)) this.cache.delete(key);
  }

  private signature(id: string, prompt: ApiPrompt, def: NodeDefinition, known: ReadonlyMap<string, string>): string {
    const node = prompt[id];
    const parts: Json[] = [node.class_type];
    const constants: Record<string, unknown> = {};
    for (const name of Object.keys(node.inputs ?? {}).sort()) {
      const value = node.inputs[name];
      if (isLink(value)) parts.push([name, known.get(value[0]) ?? `missing:${value[0]}`, value[1]]);
      else {
        parts.push([name, value]);
        constants[name] = value;
      }
    }
    if (def.fingerprint) {
      try {
        const f = def.fingerprint(this.coerceConstants(def, constants), this.env);
        // NaN never equals itself: such a node runs every time (ComfyUI's IS_CHANGED convention).
        parts.push(typeof f === 'number' && Number.isNaN(f) ? `always:${Math.random()}` : (f ?? null));
      } catch {
        parts.push(`unfingerprintable:${Math.random()}`);
      }
    }
    return createHash('sha256').update(stringifyJson(parts)).digest('hex');
  }

  private coerceConstants(def: NodeDefinition, constants: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(constants)) {
      const spec = def.inputs[name];
      const c = spec ? coerceInput(name, spec, value, this.env) : { ok: true as const, value };
      out[name] = c.ok ? c.value : value;
    }
    return out;
  }

  private gatherInputs(id: string, prompt: ApiPrompt, def: NodeDefinition, outputs: ReadonlyMap<string, readonly unknown[]>): Record<string, unknown> {
    const node = prompt[id];
    const inputs: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(def.inputs)) {
      const value = node.inputs?.[name];
      if (value === undefined) {
        if (spec.optional) continue;
        if (spec.kind !== 'SOCKET' && 'default' in spec && spec.default !== undefined) {
          inputs[name] = spec.default;
          continue;
        }
        throw new LoraGraphError('required_input_missing', `Required input is missing: ${name}`);
      }
      if (isLink(value)) {
        const source = outputs.get(value[0]);
        if (!source) throw new LoraGraphError('bad_linked_input', `input ${name} links to node ${value[0]}, which did not run`);
        inputs[name] = source[value[1]];
        continue;
      }
      const c = coerceInput(name, spec, value, this.env);
      if (!c.ok) throw new LoraGraphError(c.type, c.message);
      inputs[name] = c.value;
    }
    return inputs;
  }
}

/** Dependency order of the ancestors of `targets` (depth-first, inputs before the node). */
export function executionOrder(prompt: ApiPrompt, targets: readonly string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]) => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') throw new LoraGraphError('dependency_cycle', `the graph has a cycle: ${[...path, id].join(' → ')}`);
    if (!prompt[id]) throw new LoraGraphError('bad_linked_input', `node ${path[path.length - 1]} links to node ${id}, which does not exist`);
    state.set(id, 'visiting');
    for (const value of Object.values(prompt[id].inputs ?? {})) if (isLink(value)) visit(value[0], [...path, id]);
    state.set(id, 'done');
    order.push(id);
  };
  for (const t of targets) visit(t, []);
  return order;
}

function describeFailure(err: unknown, nodeId: string, nodeType: string, executed: string[]): ExecutionFailure {
  const error = err instanceof Error ? err : new Error(String(err));
  return {
    nodeId,
    nodeType,
    message: error.message,
    type: error instanceof LoraGraphError ? error.code : error.name,
    traceback: (error.stack ?? error.message).split('\n'),
    executed,
  };
}
