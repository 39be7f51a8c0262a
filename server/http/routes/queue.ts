/** The queue (list, clear, delete, move to front), interrupt, free, and the history. */
import type { Request } from 'express';
import { InvalidInputError } from '../../../engine/errors.ts';
import { objectBody, optionalObjectBody, sendJsonText, stringList } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';

const queueItem = {
  type: 'array',
  description: '[number, prompt_id, prompt, extra_data, outputs_to_execute]',
  items: {},
};

function nonNegativeInt(req: Request, name: string): number | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 0) throw new InvalidInputError(`${name} must be a whole number ≥ 0, got ${JSON.stringify(raw)}`);
  return n;
}

export function queueRoutes(ctx: ServerContext): Route[] {
  const { store, runner } = ctx;
  return [
    {
      method: 'get',
      path: '/queue',
      body: 'none',
      doc: {
        summary: 'The running job and the pending jobs (in the order they will run)',
        tags: ['queue'],
        responses: { '200': doc.json('Queue', { type: 'object', properties: { queue_running: { type: 'array', items: queueItem }, queue_pending: { type: 'array', items: queueItem } } }) },
      },
      handler(_req, res) {
        sendJsonText(res, store.queueText());
      },
    },
    {
      method: 'post',
      path: '/queue',
      body: 'json',
      doc: {
        summary: 'Clear the pending queue, delete pending jobs, or move pending jobs to the front',
        description: 'Body: {clear: true} | {delete: [prompt_id…]} | {move_to_front: [prompt_id…]} (ours). A running job is not affected: use /interrupt.',
        tags: ['queue'],
        requestBody: doc.jsonBody({
          type: 'object',
          properties: { clear: { type: 'boolean' }, delete: { type: 'array', items: { type: 'string' } }, move_to_front: { type: 'array', items: { type: 'string' } } },
        }),
        responses: { '200': doc.empty('Done'), '400': doc.json('Malformed body') },
      },
      handler(req, res) {
        const body = objectBody(req);
        if (body.clear === true) store.clear();
        if (body.delete !== undefined) store.delete(stringList(body.delete, 'delete'));
        if (body.move_to_front !== undefined) store.moveToFront(stringList(body.move_to_front, 'move_to_front'));
        runner.queueChanged();
        res.status(200).end();
      },
    },
    {
      method: 'post',
      path: '/interrupt',
      body: 'json',
      doc: {
        summary: 'Interrupt the running job at the next sampler step or node',
        description: 'Body (optional): {prompt_id} interrupts only if that job is the one running. No body interrupts whatever runs.',
        tags: ['queue'],
        requestBody: doc.jsonBody({ type: 'object', properties: { prompt_id: { type: 'string' } } }, false),
        responses: { '200': doc.empty('Done (also when nothing was running)') },
      },
      handler(req, res) {
        const id = optionalObjectBody(req)?.prompt_id;
        runner.interrupt(typeof id === 'string' ? id : undefined);
        res.status(200).end();
      },
    },
    {
      method: 'post',
      path: '/free',
      body: 'json',
      doc: {
        summary: 'Unload models and/or drop cached node outputs after the current job',
        tags: ['queue'],
        requestBody: doc.jsonBody({ type: 'object', properties: { unload_models: { type: 'boolean' }, free_memory: { type: 'boolean' } } }),
        responses: { '200': doc.empty('Scheduled') },
      },
      handler(req, res) {
        const body = optionalObjectBody(req) ?? {};
        runner.free({ unloadModels: body.unload_models === true, freeMemory: body.free_memory === true });
        res.status(200).end();
      },
    },
    {
      method: 'get',
      path: '/history',
      body: 'none',
      doc: {
        summary: 'Finished jobs, oldest first: status, timings, outputs, status messages (errors included)',
        description: 'With only max_items, the newest max_items entries. Kept across restarts (SQLite).',
        tags: ['history'],
        parameters: [doc.query('max_items', 'How many entries', { type: 'integer', minimum: 0 }), doc.query('offset', 'Entries to skip from the oldest', { type: 'integer', minimum: 0 })],
        responses: { '200': doc.json('History items by prompt id'), '400': doc.json('Bad max_items or offset') },
      },
      handler(req, res) {
        sendJsonText(res, store.historyText({ maxItems: nonNegativeInt(req, 'max_items'), offset: nonNegativeInt(req, 'offset') }));
      },
    },
    {
      method: 'get',
      path: '/history/{prompt_id}',
      body: 'none',
      doc: {
        summary: 'One finished job ({} when unknown or not finished)',
        tags: ['history'],
        parameters: [doc.pathParam('prompt_id', 'The job')],
        responses: { '200': doc.json('{prompt_id: item} or {}') },
      },
      handler(req, res) {
        sendJsonText(res, store.historyText({ promptId: String(req.params.prompt_id) }));
      },
    },
    {
      method: 'post',
      path: '/history',
      body: 'json',
      doc: {
        summary: 'Clear the history or delete entries',
        tags: ['history'],
        requestBody: doc.jsonBody({ type: 'object', properties: { clear: { type: 'boolean' }, delete: { type: 'array', items: { type: 'string' } } } }),
        responses: { '200': doc.empty('Done'), '400': doc.json('Malformed body') },
      },
      handler(req, res) {
        const body = objectBody(req);
        if (body.clear === true) store.clearHistory();
        if (body.delete !== undefined) store.deleteHistory(stringList(body.delete, 'delete'));
        res.status(200).end();
      },
    },
  ];
}
