/**
 * Our LoRA routes: the loras folder with each file's base model, families, trigger words and training
 * metadata, and the full inspection of one file. Inspections are cached by file size and mtime, so listing a
 * large folder reads each file's header once.
 */
import { existsSync, statSync } from 'node:fs';
import { inspectLora, listLoras, resolveLoraName, type LoraInspection } from '../../../engine/lora/index.ts';
import { sendJson } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';

const cache = new Map<string, { stamp: string; inspection: LoraInspection }>();

function inspect(path: string): LoraInspection {
  const s = statSync(path);
  const stamp = `${s.size}:${s.mtimeMs}`;
  const hit = cache.get(path);
  if (hit?.stamp === stamp) return hit.inspection;
  const inspection = inspectLora(path);
  cache.set(path, { stamp, inspection });
  return inspection;
}

/** The inspection without the absolute path (the name is relative to the loras folder). */
function describe(name: string, i: LoraInspection) {
  const { path: _path, ...rest } = i;
  return { name, ...rest };
}

export function loraRoutes(ctx: ServerContext): Route[] {
  const dir = ctx.env.folders.models.loras;
  return [
    {
      method: 'get',
      path: '/loras',
      body: 'none',
      doc: {
        summary: 'LoRA files with base model, families, trigger words and a metadata summary',
        description: 'A file that cannot be read is listed with an `error` instead of failing the whole list.',
        tags: ['loras'],
        responses: {
          '200': doc.json('LoRAs', {
            type: 'array',
            items: { type: 'object', properties: { name: { type: 'string' }, fileBytes: { type: 'integer' }, baseModel: { type: 'object' }, families: { type: 'object' }, triggerWords: { type: 'object' }, error: { type: 'string' } } },
          }),
        },
      },
      handler(_req, res) {
        const names = existsSync(dir) ? listLoras(dir) : [];
        sendJson(
          res,
          names.map((name) => {
            try {
              const i = inspect(resolveLoraName(name, dir));
              return { name, fileBytes: i.fileBytes, baseModel: i.baseModel, families: i.families, ranks: i.ranks, triggerWords: i.triggerWords, metadata: i.metadata.summary };
            } catch (err) {
              return { name, error: (err as Error).message };
            }
          }),
        );
      },
    },
    {
      method: 'get',
      path: '/loras/{name}/info',
      body: 'none',
      doc: {
        summary: 'Everything known about one LoRA file (families, ranks, alpha, modules by component and block group, unused keys, trigger words, metadata)',
        description: 'name is the path inside the loras folder, URL-encoded (subfolder/x.safetensors → subfolder%2Fx.safetensors); the extension may be left out.',
        tags: ['loras'],
        parameters: [doc.pathParam('name', 'LoRA name')],
        responses: { '200': doc.json('Inspection'), '400': doc.json('A name that leaves the folder, or an unreadable file'), '404': doc.json('No such LoRA (the message lists the closest names)') },
      },
      handler(req, res) {
        const name = String(req.params.name);
        sendJson(res, describe(name, inspect(resolveLoraName(name, dir))));
      },
    },
  ];
}
