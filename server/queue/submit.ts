/**
 * Queueing a workflow as POST /prompt does: an editor workflow is converted (and kept for the images'
 * metadata), the prompt is validated, and the job is stored. The answer is ComfyUI's: 200 with
 * `{prompt_id, number, node_errors}` or 400 with `{error, node_errors}`.
 */
import { randomUUID } from 'node:crypto';
import { isJsonObject, stringifyJson, type Json } from '../../engine/json.ts';
import type { NodeDefinition, NodeEnv } from '../../nodes/index.ts';
import { promptError, validatePrompt, type NodeErrors, type PromptError } from '../executor/validate.ts';
import { isUiWorkflow, uiToApi } from '../workflow/ui-to-api.ts';
import type { JobRunner } from './runner.ts';
import type { JobStore } from './store.ts';

/** Keys ComfyUI never keeps with a job (account tokens for its paid API nodes). */
const SENSITIVE_EXTRA_DATA_KEYS = ['auth_token_comfy_org', 'api_key_comfy_org'];

export type Submission =
  | { readonly status: 200; readonly body: { prompt_id: string; number: number; node_errors: NodeErrors } }
  | { readonly status: 400; readonly body: { error: PromptError; node_errors: NodeErrors } };

export interface SubmitContext {
  readonly store: JobStore;
  readonly runner: JobRunner;
  readonly nodes: ReadonlyMap<string, NodeDefinition>;
  readonly env: NodeEnv;
}

const refuse = (error: PromptError, nodeErrors: NodeErrors = {}): Submission => ({ status: 400, body: { error, node_errors: nodeErrors } });

/** `body` is the parsed POST /prompt body: {prompt, client_id?, extra_data?, front?, number?, prompt_id?, partial_execution_targets?}. */
export function submitPrompt(ctx: SubmitContext, body: Json | undefined): Submission {
  if (!isJsonObject(body) || body.prompt === undefined) return refuse(promptError('no_prompt', 'No prompt provided', 'the body must be {"prompt": {...}}'));
  const extraData: Record<string, Json> = isJsonObject(body.extra_data) ? { ...body.extra_data } : {};
  let prompt = body.prompt;
  if (isUiWorkflow(prompt)) {
    const workflow = prompt;
    try {
      prompt = uiToApi(workflow, ctx.nodes) as unknown as Json;
    } catch (err) {
      return refuse(promptError('invalid_prompt', (err as Error).message));
    }
    const pngInfo = isJsonObject(extraData.extra_pnginfo) ? extraData.extra_pnginfo : {};
    extraData.extra_pnginfo = { ...pngInfo, workflow: pngInfo.workflow ?? workflow };
  }
  const targets = body.partial_execution_targets;
  if (targets !== undefined && targets !== null && !(Array.isArray(targets) && targets.every((t) => typeof t === 'string'))) {
    return refuse(promptError('invalid_prompt', 'partial_execution_targets must be a list of node ids (strings)'));
  }
  const validation = validatePrompt(prompt, ctx.nodes, ctx.env, (targets as string[] | null | undefined) ?? undefined);
  if (!validation.ok) return refuse(validation.error, validation.nodeErrors);

  const promptId = typeof body.prompt_id === 'string' && body.prompt_id ? body.prompt_id : randomUUID();
  if (ctx.store.has(promptId)) return refuse(promptError('duplicate_prompt_id', `prompt_id "${promptId}" is already queued or in the history; send another id or none`));
  let number: number | undefined;
  if (body.number !== undefined && body.number !== null) {
    number = Number(body.number);
    if (!Number.isFinite(number)) return refuse(promptError('invalid_prompt', `number must be a finite number, got ${stringifyJson(body.number)}`));
  }
  const clientId = typeof body.client_id === 'string' && body.client_id ? body.client_id : undefined;
  if (clientId) extraData.client_id = clientId;
  for (const key of SENSITIVE_EXTRA_DATA_KEYS) delete extraData[key];
  number = ctx.store.add({
    promptId,
    number,
    front: body.front === true,
    promptText: stringifyJson(validation.prompt),
    extraDataText: stringifyJson(extraData),
    clientId,
    outputs: validation.outputs,
  });
  ctx.runner.queueChanged();
  return { status: 200, body: { prompt_id: promptId, number, node_errors: validation.nodeErrors } };
}
