/** POST /prompt (validate and queue; API or editor format) and GET /prompt. */
import type { Json } from '../../../engine/json.ts';
import { promptError } from '../../executor/validate.ts';
import { submitPrompt } from '../../queue/submit.ts';
import { jsonBody, sendJson } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';

export const promptErrorSchema = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { type: { type: 'string' }, message: { type: 'string' }, details: { type: 'string' }, extra_info: { type: 'object' } } },
    node_errors: { type: 'object', additionalProperties: { type: 'object', properties: { errors: { type: 'array' }, dependent_outputs: { type: 'array' }, class_type: { type: 'string' } } } },
  },
};

export function promptRoutes(ctx: ServerContext): Route[] {
  return [
    {
      method: 'post',
      path: '/prompt',
      body: 'json',
      doc: {
        summary: 'Validate a workflow and queue it',
        description:
          'Body: {prompt, client_id?, extra_data?, front?, number?, prompt_id?, partial_execution_targets?}. `prompt` is an API-format graph or an editor (UI) workflow, which is converted. Integers keep 64 bits. A prompt whose outputs all fail validation is refused with 400; when only some fail, it is queued with the rest and node_errors lists the failures.',
        tags: ['queue'],
        requestBody: doc.jsonBody({
          type: 'object',
          required: ['prompt'],
          properties: {
            prompt: { type: 'object' },
            client_id: { type: 'string' },
            extra_data: { type: 'object' },
            front: { type: 'boolean' },
            number: { type: 'number' },
            prompt_id: { type: 'string' },
            partial_execution_targets: { type: 'array', items: { type: 'string' } },
          },
        }),
        responses: {
          '200': doc.json('Queued', { type: 'object', properties: { prompt_id: { type: 'string' }, number: { type: 'number' }, node_errors: { type: 'object' } } }),
          '400': doc.json('Refused: no prompt, bad JSON, unknown node type, no outputs, or every output failed validation', promptErrorSchema),
        },
      },
      handler(req, res) {
        let body: Json | undefined;
        try {
          body = jsonBody(req);
        } catch (err) {
          return sendJson(res, { error: promptError('invalid_json', (err as Error).message), node_errors: {} }, 400);
        }
        const answer = submitPrompt(ctx, body);
        sendJson(res, answer.body, answer.status);
      },
    },
    {
      method: 'get',
      path: '/prompt',
      body: 'none',
      doc: {
        summary: 'How many jobs are queued or running',
        tags: ['queue'],
        responses: { '200': doc.json('Queue size', { type: 'object', properties: { exec_info: { type: 'object', properties: { queue_remaining: { type: 'integer' } } } } }) },
      },
      handler(_req, res) {
        sendJson(res, { exec_info: { queue_remaining: ctx.store.remaining() } });
      },
    },
  ];
}
