/**
 * Reads a workflow from whatever a user has: API-format JSON, an editor workflow (converted), a saved
 * `/prompt` request body, or a PNG made by LoraGraph or ComfyUI (its `prompt` chunk is the exact graph that
 * made the image; else its `workflow` chunk is converted). Integers stay exact (seeds).
 */
import { InvalidInputError } from '../../engine/errors.ts';
import { isPng, readPngText } from '../../engine/image/index.ts';
import { isJsonObject, parseJson, type Json } from '../../engine/json.ts';
import type { NodeDefinition } from '../../nodes/index.ts';
import { isUiWorkflow, uiToApi } from './ui-to-api.ts';

export interface LoadedWorkflow {
  /** The API prompt (not validated yet). */
  readonly prompt: Json;
  /** The editor workflow it came from, when there was one (embedded in saved images). */
  readonly workflow?: Record<string, Json>;
  readonly format: 'api' | 'ui' | 'png';
}

/** A parsed JSON workflow in any of the JSON formats. */
export function loadWorkflowJson(value: Json, definitions: ReadonlyMap<string, NodeDefinition>): LoadedWorkflow {
  if (isUiWorkflow(value)) return { prompt: uiToApi(value, definitions) as unknown as Json, workflow: value, format: 'ui' };
  // A saved POST /prompt body: {prompt, extra_data: {extra_pnginfo: {workflow}}}.
  if (isJsonObject(value) && isJsonObject(value.prompt) && !('class_type' in value.prompt)) {
    const inner = loadWorkflowJson(value.prompt, definitions);
    const extra = isJsonObject(value.extra_data) && isJsonObject(value.extra_data.extra_pnginfo) ? value.extra_data.extra_pnginfo.workflow : undefined;
    return { ...inner, workflow: inner.workflow ?? (isJsonObject(extra) ? extra : undefined) };
  }
  return { prompt: value, format: 'api' };
}

/** A workflow file's bytes: a PNG with an embedded workflow, or JSON text. */
export function loadWorkflowBytes(bytes: Uint8Array, source: string, definitions: ReadonlyMap<string, NodeDefinition>): LoadedWorkflow {
  if (!isPng(bytes)) return loadWorkflowJson(parseJson(Buffer.from(bytes).toString('utf8'), source), definitions);
  const text = readPngText(bytes, source);
  const workflow = text.workflow === undefined ? undefined : parseJson(text.workflow, `${source} (workflow chunk)`);
  if (text.prompt !== undefined) {
    return { prompt: parseJson(text.prompt, `${source} (prompt chunk)`), workflow: isJsonObject(workflow) ? workflow : undefined, format: 'png' };
  }
  if (workflow !== undefined && isUiWorkflow(workflow)) return { prompt: uiToApi(workflow, definitions) as unknown as Json, workflow, format: 'png' };
  const why = text.parameters !== undefined ? 'it only has A1111 "parameters" text, which cannot be run as a graph' : 'it has no "prompt" or "workflow" text chunk';
  throw new InvalidInputError(`${source} carries no workflow: ${why}; use a PNG saved by LoraGraph or ComfyUI`);
}
