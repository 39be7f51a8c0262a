/**
 * Checks an API-format prompt before it is queued, the way ComfyUI's `validate_prompt` does, with its error
 * types and `node_errors` shape: every node needs a known type; from each output node the inputs are checked
 * recursively (missing, bad links, type mismatches, conversions, ranges, combo lists, the node's own
 * `validate`, cycles). Outputs whose graph is invalid are dropped; the prompt is refused only when none is left.
 */
import { isJsonObject, type Json } from '../../engine/json.ts';
import { coerceInput, type InputSpec, type NodeDefinition, type NodeEnv } from '../../nodes/index.ts';
import { inputConfig, inputSocketType, typesMatch } from '../object-info.ts';
import { isLink, type ApiPrompt } from './prompt.ts';

export interface PromptError {
  readonly type: string;
  readonly message: string;
  readonly details: string;
  readonly extra_info: Record<string, Json>;
}

export interface NodeError {
  readonly errors: PromptError[];
  readonly dependent_outputs: string[];
  readonly class_type: string;
}

export type NodeErrors = Record<string, NodeError>;

export type Validation =
  | { readonly ok: true; readonly prompt: ApiPrompt; readonly outputs: string[]; readonly nodeErrors: NodeErrors }
  | { readonly ok: false; readonly error: PromptError; readonly nodeErrors: NodeErrors };

export const promptError = (type: string, message: string, details = '', extra_info: Record<string, Json> = {}): PromptError => ({ type, message, details, extra_info });

/** The node's title for messages: `_meta.title`, else its type, else its id. */
function title(id: string, node: Record<string, Json>): string {
  const meta = node._meta;
  if (isJsonObject(meta) && typeof meta.title === 'string') return meta.title;
  return typeof node.class_type === 'string' ? node.class_type : `#${id}`;
}

/** Prompt-level shape and node types; the first problem refuses the whole prompt (as ComfyUI). */
function checkNodeTypes(prompt: Json, nodes: ReadonlyMap<string, NodeDefinition>): PromptError | undefined {
  if (!isJsonObject(prompt)) {
    return promptError('invalid_prompt', 'The prompt must be an object of nodes keyed by id (the API format)', `got ${Array.isArray(prompt) ? 'an array' : typeof prompt}`);
  }
  for (const [id, node] of Object.entries(prompt)) {
    if (!isJsonObject(node) || typeof node.class_type !== 'string') {
      const t = isJsonObject(node) ? title(id, node) : `#${id}`;
      return promptError('missing_node_type', `Node '${t}' has no class_type; the workflow may be damaged or in the editor format`, `Node ID '#${id}'`, { node_id: id, class_type: null, node_title: t });
    }
    if (!nodes.has(node.class_type)) {
      return promptError('missing_node_type', `Node '${title(id, node)}' has type "${node.class_type}", which this server does not have; GET /object_info lists the node types`, `Node ID '#${id}'`, {
        node_id: id,
        class_type: node.class_type,
        node_title: title(id, node),
      });
    }
    if (node.inputs !== undefined && !isJsonObject(node.inputs)) {
      return promptError('invalid_prompt', `Node '${title(id, node)}' has inputs that are not an object of name → value`, `Node ID '#${id}'`, { node_id: id });
    }
  }
  return undefined;
}

type NodeResult = { valid: boolean; errors: PromptError[] };

class PromptValidator {
  private readonly results = new Map<string, NodeResult>();

  constructor(
    private readonly prompt: ApiPrompt,
    private readonly nodes: ReadonlyMap<string, NodeDefinition>,
    private readonly env: NodeEnv,
  ) {}

  /** Every node whose result is known (after validating some outputs). */
  entries(): [string, NodeResult][] {
    return [...this.results];
  }

  validate(id: string, visiting: string[] = []): NodeResult {
    const known = this.results.get(id);
    if (known) return known;
    if (visiting.includes(id)) return this.cycle(id, visiting);
    const node = this.prompt[id];
    const def = this.nodes.get(node.class_type)!;
    const errors: PromptError[] = [];
    let valid = true;
    const constants: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(def.inputs)) {
      const value = node.inputs?.[name];
      if (value === undefined) {
        if (!spec.optional && !hasDefault(spec)) errors.push(promptError('required_input_missing', 'Required input is missing', name, { input_name: name }));
        continue;
      }
      const config = () => this.config(spec);
      if (Array.isArray(value)) {
        const linkError = this.checkLink(name, spec, value, config);
        if (linkError) {
          errors.push(linkError);
          continue;
        }
        const upstream = this.validate((value as [string, number])[0], [...visiting, id]);
        if (!upstream.valid) valid = false;
        continue;
      }
      const c = coerceInput(name, spec, value, this.env);
      if (!c.ok) {
        errors.push(promptError(c.type, c.message, c.details ?? name, { input_name: name, input_config: config(), received_value: value }));
        continue;
      }
      constants[name] = c.value;
    }
    if (errors.length === 0 && def.validate) errors.push(...this.custom(def, constants));
    // A cycle found further down may already have marked this node.
    const earlier = this.results.get(id);
    const result = { valid: valid && errors.length === 0 && (earlier?.valid ?? true), errors: [...(earlier?.errors ?? []), ...errors] };
    this.results.set(id, result);
    return result;
  }

  /** input_config as ComfyUI reports it; omitted for long combo lists (model folders). */
  private config(spec: InputSpec): Json {
    const c = inputConfig(spec, this.env);
    return Array.isArray(c[0]) && c[0].length > 20 ? null : c;
  }

  private checkLink(name: string, spec: InputSpec, value: Json[], config: () => Json): PromptError | undefined {
    const extra = { input_name: name, input_config: config(), received_value: value };
    if (!isLink(value)) return promptError('bad_linked_input', 'Bad linked input, must be a length-2 list of [node_id, slot_index]', name, extra);
    const [sourceId, slot] = value;
    const source = this.prompt[sourceId];
    if (!source) return promptError('bad_linked_input', `Input ${name} links to node ${sourceId}, which is not in the prompt`, `${name}: node ${sourceId} does not exist`, extra);
    const outputs = this.nodes.get(source.class_type)!.outputs;
    if (slot < 0 || slot >= outputs.length) {
      return promptError('bad_linked_input', `Input ${name} links to output ${slot} of node ${sourceId} (${source.class_type}), which has ${outputs.length} output${outputs.length === 1 ? '' : 's'}`, `${name}: no output slot ${slot} on node ${sourceId}`, extra);
    }
    const received = outputs[slot].type;
    const expected = inputSocketType(spec);
    if (!typesMatch(received, expected)) {
      return promptError('return_type_mismatch', 'Return type mismatch between linked nodes', `${name}, received_type(${received}) mismatch input_type(${expected})`, {
        input_name: name,
        input_config: config(),
        received_type: received,
        linked_node: value,
      });
    }
    return undefined;
  }

  private custom(def: NodeDefinition, constants: Record<string, unknown>): PromptError[] {
    try {
      const problem = def.validate!(constants, this.env);
      return problem === undefined ? [] : [promptError('custom_validation_failed', 'Custom validation failed for node', problem, {})];
    } catch (err) {
      return [promptError('exception_during_validation', 'Exception when validating node', (err as Error).message, { exception_type: (err as Error).name })];
    }
  }

  private cycle(id: string, visiting: string[]): NodeResult {
    const path = [...visiting.slice(visiting.indexOf(id)), id];
    const members = [...new Set(path)];
    const details = path.map((n) => `${n} (${this.prompt[n].class_type})`).join(' -> ');
    for (const n of members) {
      this.results.set(n, { valid: false, errors: [promptError('dependency_cycle', 'Dependency cycle detected', details, { node_id: n, cycle_nodes: members })] });
    }
    return this.results.get(id)!;
  }
}

/** Widget inputs with a default are filled in by the executor when absent, so they are not required here. */
function hasDefault(spec: InputSpec): boolean {
  if (spec.kind === 'SOCKET') return false;
  if (spec.kind === 'COMBO') return spec.default !== undefined;
  return true;
}

/**
 * Validates `prompt` (any JSON) against the node definitions. `targets` restricts the outputs to those ids
 * (ComfyUI's partial_execution_targets).
 */
export function validatePrompt(prompt: Json, nodes: ReadonlyMap<string, NodeDefinition>, env: NodeEnv, targets?: readonly string[]): Validation {
  const shapeError = checkNodeTypes(prompt, nodes);
  if (shapeError) return { ok: false, error: shapeError, nodeErrors: {} };
  const api = unwrapValues(prompt as unknown as ApiPrompt);
  const outputs = Object.keys(api).filter((id) => nodes.get(api[id].class_type)!.outputNode && (!targets || targets.includes(id)));
  if (outputs.length === 0) {
    const why = targets ? `none of the partial_execution_targets (${targets.join(', ')}) is an output node` : 'add an output node such as SaveImage or PreviewImage';
    return { ok: false, error: promptError('prompt_no_outputs', 'Prompt has no outputs', why), nodeErrors: {} };
  }
  const validator = new PromptValidator(api, nodes, env);
  const good: string[] = [];
  const failed: string[] = [];
  const nodeErrors: NodeErrors = {};
  for (const output of outputs) {
    if (validator.validate(output).valid) {
      good.push(output);
      continue;
    }
    failed.push(output);
    // Only nodes with errors of their own are listed; their dependents fail silently (as ComfyUI).
    for (const [id, result] of validator.entries()) {
      if (result.valid || result.errors.length === 0 || !dependsOn(api, output, id)) continue;
      nodeErrors[id] ??= { errors: result.errors, dependent_outputs: [], class_type: api[id].class_type };
      nodeErrors[id].dependent_outputs.push(output);
    }
  }
  if (good.length === 0) {
    const details = Object.values(nodeErrors)
      .flatMap((n) => n.errors.map((e) => `${e.message}: ${e.details}`))
      .join('\n');
    return { ok: false, error: promptError('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details), nodeErrors };
  }
  return { ok: true, prompt: api, outputs: good, nodeErrors };
}

/**
 * A copy with `{"__value__": x}` constants replaced by `x`: the API format wraps array-valued widget values so
 * they are not mistaken for links.
 */
function unwrapValues(prompt: ApiPrompt): ApiPrompt {
  const out: ApiPrompt = {};
  for (const [id, node] of Object.entries(prompt)) {
    const inputs = Object.fromEntries(Object.entries(node.inputs ?? {}).map(([k, v]) => [k, isJsonObject(v) && '__value__' in v ? v.__value__ : v]));
    out[id] = { ...node, inputs };
  }
  return out;
}

/** Whether `output` is `node` or has it among its ancestors. */
function dependsOn(prompt: ApiPrompt, output: string, node: string): boolean {
  const seen = new Set<string>();
  const stack = [output];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id === node) return true;
    if (seen.has(id) || !prompt[id]) continue;
    seen.add(id);
    for (const v of Object.values(prompt[id].inputs ?? {})) if (isLink(v)) stack.push(v[0]);
  }
  return false;
}

/** One line per node error, for terminals and logs. */
export function formatNodeErrors(nodeErrors: NodeErrors): string {
  const lines: string[] = [];
  for (const [id, n] of Object.entries(nodeErrors)) {
    for (const e of n.errors) lines.push(`  node ${id} (${n.class_type}): ${e.type}: ${e.message}${e.details ? ` (${e.details})` : ''}`);
  }
  return lines.join('\n');
}

/** The refusal and every node error. */
export function formatValidation(error: PromptError, nodeErrors: NodeErrors): string {
  // prompt_outputs_failed_validation's details repeat the node errors listed below.
  const head = `${error.message}${error.details && error.type !== 'prompt_outputs_failed_validation' ? `: ${error.details}` : ''}`;
  const body = formatNodeErrors(nodeErrors);
  return body ? `${head}\n${body}` : head;
}
