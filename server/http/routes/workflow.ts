/**
 * POST /workflow/import: any workflow file (API JSON, editor JSON, PNG with an embedded workflow) → the API
 * prompt, or with `?queue=true` straight into the queue (so a browser never has to parse a 64-bit seed).
 */
import { LoraGraphError } from '../../../engine/errors.ts';
import type { Json } from '../../../engine/json.ts';
import { submitPrompt } from '../../queue/submit.ts';
import { loadWorkflowBytes } from '../../workflow/load.ts';
import { sendJson } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';
import { promptErrorSchema } from './prompt.ts';

export function workflowRoutes(ctx: ServerContext): Route[] {
  return [
    {
      method: 'post',
      path: '/workflow/import',
      body: 'raw',
      doc: {
        summary: 'Read a workflow file (API JSON, editor JSON 0.4 or 1, or a PNG made by LoraGraph or ComfyUI), and optionally queue it',
        description:
          'The body is the file itself. Without `queue`, returns the API prompt to POST to /prompt and the editor workflow when there is one. With queue=true, queues it as POST /prompt does and answers like it.',
        tags: ['workflows'],
        parameters: [
          doc.query('queue', 'true: validate and queue the workflow', { type: 'boolean' }),
          doc.query('client_id', 'With queue: the client to send progress to'),
          doc.query('front', 'With queue: true puts it at the front', { type: 'boolean' }),
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } }, 'image/png': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          '200': doc.json('The prompt ({prompt, workflow, format}), or with queue the POST /prompt answer', {
            type: 'object',
            properties: { prompt: { type: 'object' }, workflow: { type: 'object', nullable: true }, format: { type: 'string', enum: ['api', 'ui', 'png'] } },
          }),
          '400': doc.json('Not a workflow (the message says why), or with queue a validation failure', promptErrorSchema),
        },
      },
      handler(req, res) {
        let loaded;
        try {
          loaded = loadWorkflowBytes(req.body as Buffer, 'the uploaded file', ctx.nodes);
        } catch (err) {
          if (!(err instanceof LoraGraphError)) throw err;
          return sendJson(res, { error: { type: 'invalid_workflow', message: err.message, details: '', extra_info: {} }, node_errors: {} }, 400);
        }
        if (req.query.queue !== 'true') return sendJson(res, { prompt: loaded.prompt, workflow: loaded.workflow ?? null, format: loaded.format });
        const body: Record<string, Json> = { prompt: loaded.prompt, front: req.query.front === 'true', extra_data: loaded.workflow ? { extra_pnginfo: { workflow: loaded.workflow } } : {} };
        if (typeof req.query.client_id === 'string') body.client_id = req.query.client_id;
        const answer = submitPrompt(ctx, body);
        sendJson(res, answer.body, answer.status);
      },
    },
  ];
}
