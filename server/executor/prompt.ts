/** The API ("prompt") workflow format: `{ "<id>": { class_type, inputs, _meta? } }`. */
import { InvalidInputError } from '../../engine/errors.ts';
import type { Json } from '../../engine/json.ts';

export interface ApiNode {
  readonly class_type: string;
  readonly inputs: Record<string, Json>;
  readonly _meta?: { readonly title?: string };
}

export type ApiPrompt = Record<string, ApiNode>;

/** A link is a 2-element array: [source node id (string), output slot (integer)]. */
export function isLink(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'number' && Number.isInteger(value[1]);
}

/** Checks the outer shape of an API prompt (per-node problems are validation's job). */
export function asApiPrompt(value: Json, source = 'prompt'): ApiPrompt {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(`${source} must be an object of nodes keyed by id (the API format), got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  for (const [id, node] of Object.entries(value)) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) throw new InvalidInputError(`${source}: node ${id} is not an object`);
    const n = node as Record<string, Json>;
    if (typeof n.class_type !== 'string') throw new InvalidInputError(`${source}: node ${id} has no class_type`);
    if (n.inputs !== undefined && (typeof n.inputs !== 'object' || n.inputs === null || Array.isArray(n.inputs))) {
      throw new InvalidInputError(`${source}: node ${id} has inputs that are not an object`);
    }
  }
  return value as unknown as ApiPrompt;
}
