/**
 * ComfyUI's `/object_info` shape, derived from the node definitions: each input as `[TYPE, options]` (a combo's
 * TYPE is its list of options), `input_order`, outputs with names and tooltips. Seeds keep their 64-bit max
 * (bigint), so write the result with `stringifyJson`.
 */
import type { Json } from '../engine/json.ts';
import { comboOptions, type InputSpec, type NodeDefinition, type NodeEnv } from '../nodes/index.ts';

/** The type a widget input receives along a link (what its socket accepts when converted to an input). */
export function inputSocketType(spec: InputSpec): string {
  return spec.kind === 'SOCKET' ? spec.type : spec.kind;
}

/** Socket types match as in ComfyUI: `*` accepts anything; comma-separated unions match on any shared type. */
export function typesMatch(received: string, expected: string): boolean {
  if (received === '*' || expected === '*') return true;
  const wanted = new Set(expected.split(','));
  return received.split(',').some((t) => wanted.has(t));
}

/** Drops undefined options so the JSON carries only what is set. */
function options(entries: Record<string, Json | undefined>): Record<string, Json> {
  return Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== undefined)) as Record<string, Json>;
}

/** One input as ComfyUI declares it: `["INT", {default, min, max, …}]`, `[[...options], {...}]`, `["MODEL", {}]`. */
export function inputConfig(spec: InputSpec, env: NodeEnv): [Json, Record<string, Json>] {
  const tooltip = spec.tooltip;
  switch (spec.kind) {
    case 'INT':
      return ['INT', options({ default: spec.default, min: spec.min, max: spec.max, step: spec.step ?? 1, control_after_generate: spec.seed || undefined, tooltip })];
    case 'FLOAT':
      return ['FLOAT', options({ default: spec.default, min: spec.min, max: spec.max, step: spec.step, round: spec.round, tooltip })];
    case 'STRING':
      return ['STRING', options({ default: spec.default, multiline: spec.multiline, dynamicPrompts: spec.dynamicPrompts, tooltip })];
    case 'BOOLEAN':
      return ['BOOLEAN', options({ default: spec.default, label_on: spec.labelOn, label_off: spec.labelOff, tooltip })];
    case 'COMBO':
      return [[...comboOptions(spec, env)], options({ default: spec.default, image_upload: spec.imageUpload, tooltip })];
    case 'SOCKET':
      return [spec.type, options({ tooltip })];
  }
}

/** The `/object_info/{class}` entry of one node type. */
export function nodeInfo(def: NodeDefinition, env: NodeEnv): Record<string, Json> {
  const required: Record<string, Json> = {};
  const optional: Record<string, Json> = {};
  for (const [name, spec] of Object.entries(def.inputs)) (spec.optional ? optional : required)[name] = inputConfig(spec, env);
  const input: Record<string, Json> = { required };
  const inputOrder: Record<string, Json> = { required: Object.keys(required) };
  if (Object.keys(optional).length > 0) {
    input.optional = optional;
    inputOrder.optional = Object.keys(optional);
  }
  return {
    input,
    input_order: inputOrder,
    output: def.outputs.map((o) => o.type),
    output_is_list: def.outputs.map(() => false),
    output_name: def.outputs.map((o) => o.name),
    output_tooltips: def.outputs.map((o) => o.tooltip ?? ''),
    name: def.name,
    display_name: def.displayName,
    description: def.description,
    category: def.category,
    // ComfyUI's frontend treats `nodes` as "core"; every node here is built in.
    python_module: 'nodes',
    output_node: def.outputNode === true,
    deprecated: false,
    experimental: false,
  };
}

export function objectInfo(nodes: ReadonlyMap<string, NodeDefinition>, env: NodeEnv): Record<string, Json> {
  return Object.fromEntries([...nodes.values()].map((def) => [def.name, nodeInfo(def, env)]));
}
