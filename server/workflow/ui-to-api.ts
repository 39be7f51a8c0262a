/**
 * The editor ("UI") workflow formats — version 0.4 with link arrays and version 1 with link objects — turned
 * into the API format the executor runs, as ComfyUI's frontend does when it queues: muted (mode 2) and
 * bypassed (mode 4) nodes are left out, links through a bypassed node go to its matching input, Reroutes are
 * followed, a PrimitiveNode's value goes into the inputs it feeds, and positional `widgets_values` are mapped
 * onto the node's widget inputs in input order, skipping the control_after_generate value after a seed.
 */
import { InvalidInputError } from '../../engine/errors.ts';
import { isJsonObject, type Json } from '../../engine/json.ts';
import type { InputSpec, NodeDefinition } from '../../nodes/index.ts';
import { typesMatch } from '../object-info.ts';
import type { ApiNode, ApiPrompt } from '../executor/prompt.ts';

const MODE_MUTED = 2;
const MODE_BYPASSED = 4;
/** Editor-only node types: they never reach the server. */
const VIRTUAL = new Set(['Reroute', 'PrimitiveNode', 'Note', 'MarkdownNote']);
/** Values the editor stores for a seed's control_after_generate widget (very old files store booleans). */
const CONTROL_VALUES = new Set<Json>(['fixed', 'increment', 'decrement', 'randomize', true, false]);

interface UiSlot {
  readonly name?: string;
  readonly type?: Json;
  readonly link?: number | null;
  readonly links?: number[] | null;
  readonly widget?: { readonly name?: string };
}

interface UiNode {
  readonly id: number | string;
  readonly type: string;
  readonly mode?: number;
  readonly title?: string;
  readonly inputs?: UiSlot[];
  readonly outputs?: UiSlot[];
  readonly widgets_values?: Json[] | Record<string, Json>;
  readonly widgets_values_named?: Record<string, Json>;
}

interface UiLink {
  readonly originId: string;
  readonly originSlot: number;
  readonly type: string;
}

/** Whether a JSON value is an editor workflow (it has `nodes` and `links` arrays) rather than an API prompt. */
export function isUiWorkflow(value: Json): value is Record<string, Json> {
  return isJsonObject(value) && Array.isArray(value.nodes) && Array.isArray(value.links);
}

function readLinks(workflow: Record<string, Json>): Map<number, UiLink> {
  const links = new Map<number, UiLink>();
  for (const raw of workflow.links as Json[]) {
    // 0.4: [id, origin_id, origin_slot, target_id, target_slot, type]; 1: {id, origin_id, origin_slot, …}.
    const l = Array.isArray(raw) ? { id: raw[0], origin_id: raw[1], origin_slot: raw[2], type: raw[5] } : isJsonObject(raw) ? raw : undefined;
    if (!l || typeof l.id !== 'number' || l.origin_id === undefined || typeof l.origin_slot !== 'number') {
      throw new InvalidInputError(`workflow link ${JSON.stringify(raw)} is not a link (expected [id, origin, slot, target, slot, type] or {id, origin_id, …})`);
    }
    links.set(l.id, { originId: String(l.origin_id), originSlot: l.origin_slot, type: typeof l.type === 'string' ? l.type : '*' });
  }
  return links;
}

function readNodes(workflow: Record<string, Json>): Map<string, UiNode> {
  const nodes = new Map<string, UiNode>();
  for (const raw of workflow.nodes as Json[]) {
    if (!isJsonObject(raw) || (typeof raw.id !== 'number' && typeof raw.id !== 'string') || typeof raw.type !== 'string') {
      throw new InvalidInputError('every node of a workflow needs an id and a type');
    }
    nodes.set(String(raw.id), raw as unknown as UiNode);
  }
  return nodes;
}

/** Widget inputs in the order the editor creates widgets: required, then optional (object_info's input_order). */
function widgetNames(def: NodeDefinition): [string, InputSpec][] {
  const entries = Object.entries(def.inputs).filter(([, s]) => s.kind !== 'SOCKET');
  return [...entries.filter(([, s]) => !s.optional), ...entries.filter(([, s]) => s.optional)];
}

/** The widget values of a node by input name (from the named map, a record, or the positional array). */
function widgetValues(node: UiNode, def: NodeDefinition): Record<string, Json> {
  if (node.widgets_values_named) return { ...node.widgets_values_named };
  const values = node.widgets_values;
  if (values === undefined) return {};
  if (!Array.isArray(values)) return { ...values };
  const out: Record<string, Json> = {};
  let i = 0;
  for (const [name, spec] of widgetNames(def)) {
    if (i >= values.length) break;
    out[name] = values[i++];
    if (spec.kind === 'INT' && spec.seed && i < values.length && CONTROL_VALUES.has(values[i])) i++;
  }
  return out;
}

type Source = { link: [string, number] } | { value: Json } | undefined;

class Converter {
  constructor(
    private readonly nodes: ReadonlyMap<string, UiNode>,
    private readonly links: ReadonlyMap<number, UiLink>,
    private readonly definitions: ReadonlyMap<string, NodeDefinition>,
  ) {}

  convert(): ApiPrompt {
    const prompt: ApiPrompt = {};
    for (const [id, node] of this.nodes) {
      if (node.mode === MODE_MUTED || node.mode === MODE_BYPASSED || VIRTUAL.has(node.type)) continue;
      if (this.isSubgraph(node)) throw new InvalidInputError(`node ${id} is a subgraph ("${node.title ?? node.type}"); subgraphs are not supported yet: unpack it in the editor first`);
      prompt[id] = this.convertNode(node);
    }
    // Links into nodes that were left out (muted) are dropped, as the editor does.
    for (const node of Object.values(prompt)) {
      for (const [name, v] of Object.entries(node.inputs)) if (Array.isArray(v) && !prompt[v[0] as string]) delete node.inputs[name];
    }
    return prompt;
  }

  private isSubgraph(node: UiNode): boolean {
    return !this.definitions.has(node.type) && /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(node.type);
  }

  private convertNode(node: UiNode): ApiNode {
    const def = this.definitions.get(node.type);
    const inputs: Record<string, Json> = {};
    if (def) {
      const values = widgetValues(node, def);
      for (const [name, spec] of widgetNames(def)) {
        const v = values[name] ?? defaultValue(spec);
        if (v !== undefined) inputs[name] = Array.isArray(v) ? { __value__: v } : v;
      }
    }
    for (const slot of node.inputs ?? []) {
      const name = slot.widget?.name ?? slot.name;
      if (!name || slot.link === null || slot.link === undefined) continue;
      const source = this.resolve(slot.link, typeof slot.type === 'string' ? slot.type : '*', new Set());
      if (!source) delete inputs[name];
      else if ('link' in source) inputs[name] = source.link;
      else inputs[name] = source.value;
    }
    return { class_type: node.type, inputs, _meta: { title: node.title ?? def?.displayName ?? node.type } };
  }

  /** Where a link really comes from, looking through Reroutes, bypassed nodes and PrimitiveNodes. */
  private resolve(linkId: number, wanted: string, seen: Set<number>): Source {
    const link = this.links.get(linkId);
    if (!link || seen.has(linkId)) return undefined;
    seen.add(linkId);
    const origin = this.nodes.get(link.originId);
    if (!origin || origin.mode === MODE_MUTED) return undefined;
    if (origin.type === 'PrimitiveNode') {
      const values = origin.widgets_values;
      return Array.isArray(values) && values.length > 0 ? { value: values[0] } : undefined;
    }
    if (origin.type === 'Reroute') {
      const input = origin.inputs?.[0]?.link;
      return typeof input === 'number' ? this.resolve(input, wanted, seen) : undefined;
    }
    if (origin.mode === MODE_BYPASSED) {
      const through = this.bypassInput(origin, link.originSlot, wanted);
      return typeof through === 'number' ? this.resolve(through, wanted, seen) : undefined;
    }
    return { link: [link.originId, link.originSlot] };
  }

  /**
   * The input a bypassed node passes through for output `slot`: the same-index input when its type fits,
   * else the first input of exactly the wanted type, else the first compatible one.
   */
  private bypassInput(node: UiNode, slot: number, wanted: string): number | undefined {
    const inputs = (node.inputs ?? []).map((s) => ({ link: s.link, type: typeof s.type === 'string' ? s.type : '*' }));
    const outType = typeof node.outputs?.[slot]?.type === 'string' ? (node.outputs[slot].type as string) : wanted;
    const fits = (t: string) => typesMatch(t, outType) && typesMatch(t, wanted);
    const pick =
      (wanted === '*' ? (inputs[slot] ?? inputs[0]) : undefined) ??
      (inputs[slot] && fits(inputs[slot].type) ? inputs[slot] : undefined) ??
      inputs.find((s) => s.type === wanted) ??
      inputs.find((s) => fits(s.type));
    return typeof pick?.link === 'number' ? pick.link : undefined;
  }
}

function defaultValue(spec: InputSpec): Json | undefined {
  if (spec.kind === 'SOCKET') return undefined;
  if (spec.kind === 'COMBO') return spec.default ?? (Array.isArray(spec.options) ? spec.options[0] : undefined);
  return spec.default;
}

/** Converts an editor workflow (0.4 or 1) to an API prompt; unknown node types are kept for validation to report. */
export function uiToApi(workflow: Record<string, Json>, definitions: ReadonlyMap<string, NodeDefinition>): ApiPrompt {
  if (isJsonObject(workflow.extra) && isJsonObject(workflow.extra.groupNodes) && Object.keys(workflow.extra.groupNodes).length > 0) {
    throw new InvalidInputError('the workflow uses legacy group nodes, which are not supported: convert them to plain nodes in the editor first');
  }
  return new Converter(readNodes(workflow), readLinks(workflow), definitions).convert();
}

