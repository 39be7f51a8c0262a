/** What the server offers: node types (object_info), model files, system and feature information. */
import { createRequire } from 'node:module';
import { freemem, totalmem } from 'node:os';
import { listFiles } from '../../../nodes/index.ts';
import { nodeInfo, objectInfo } from '../../object-info.ts';
import type { WireJson } from '../../events/hub.ts';
import { sendJson } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';

const MODEL_FOLDERS = ['checkpoints', 'loras'] as const;
const ORT_VERSION = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

/** Server capabilities, as GET /features and the /ws feature_flags reply give them. */
export function serverFeatures(ctx: Pick<ServerContext, 'maxUploadBytes'>): { [key: string]: WireJson } {
  return { supports_preview_metadata: true, max_upload_size: ctx.maxUploadBytes };
}

export function infoRoutes(ctx: ServerContext): Route[] {
  return [
    {
      method: 'get',
      path: '/object_info',
      body: 'none',
      doc: {
        summary: 'Every node type in ComfyUI’s object_info shape',
        description: 'Inputs as [TYPE, options] (a combo’s TYPE is its option list, file combos listed from the folders now), input_order, outputs. The seed max (2^64−1) is written as an exact integer.',
        tags: ['nodes'],
        responses: { '200': doc.json('Node definitions by class name') },
      },
      handler(_req, res) {
        sendJson(res, objectInfo(ctx.nodes, ctx.env));
      },
    },
    {
      method: 'get',
      path: '/object_info/{node_class}',
      body: 'none',
      doc: {
        summary: 'One node type ({} when unknown)',
        tags: ['nodes'],
        parameters: [doc.pathParam('node_class', 'Class name, e.g. KSampler')],
        responses: { '200': doc.json('{class: definition} or {}') },
      },
      handler(req, res) {
        const def = ctx.nodes.get(String(req.params.node_class));
        sendJson(res, def ? { [def.name]: nodeInfo(def, ctx.env) } : {});
      },
    },
    {
      method: 'get',
      path: '/models',
      body: 'none',
      doc: { summary: 'The model folder kinds', tags: ['models'], responses: { '200': doc.json('Folder names', { type: 'array', items: { type: 'string' } }) } },
      handler(_req, res) {
        sendJson(res, MODEL_FOLDERS);
      },
    },
    {
      method: 'get',
      path: '/models/{folder}',
      body: 'none',
      doc: {
        summary: 'Files in one model folder (relative paths with /)',
        tags: ['models'],
        parameters: [doc.pathParam('folder', 'checkpoints or loras')],
        responses: { '200': doc.json('File names', { type: 'array', items: { type: 'string' } }), '404': doc.empty('Unknown folder') },
      },
      handler(req, res) {
        const folder = String(req.params.folder);
        if (!(MODEL_FOLDERS as readonly string[]).includes(folder)) {
          res.status(404).type('text/plain').send(`unknown model folder "${folder}"; folders: ${MODEL_FOLDERS.join(', ')}`);
          return;
        }
        sendJson(res, listFiles(ctx.env, folder as (typeof MODEL_FOLDERS)[number]));
      },
    },
    {
      method: 'get',
      path: '/embeddings',
      body: 'none',
      doc: {
        summary: 'Textual-inversion embeddings (none: the engine does not load embeddings yet)',
        tags: ['models'],
        responses: { '200': doc.json('Embedding names', { type: 'array', items: { type: 'string' } }) },
      },
      handler(_req, res) {
        sendJson(res, []);
      },
    },
    {
      method: 'get',
      path: '/system_stats',
      body: 'none',
      doc: { summary: 'Versions, memory and the execution device', tags: ['system'], responses: { '200': doc.json('System information') } },
      handler(_req, res) {
        const provider = ctx.runner.provider;
        sendJson(res, {
          system: {
            os: process.platform === 'win32' ? 'nt' : 'posix',
            ram_total: totalmem(),
            ram_free: freemem(),
            comfyui_version: `loragraph ${ctx.version}`,
            loragraph_version: ctx.version,
            python_version: `node ${process.version}`,
            pytorch_version: `onnxruntime-node ${ORT_VERSION}`,
            embedded_python: false,
            argv: process.argv.slice(1),
          },
          devices: [{ name: provider, type: provider, index: 0, vram_total: 0, vram_free: 0, torch_vram_total: 0, torch_vram_free: 0 }],
        });
      },
    },
    {
      method: 'get',
      path: '/features',
      body: 'none',
      doc: {
        summary: 'Server feature flags (the same the /ws feature_flags reply carries)',
        tags: ['system'],
        responses: { '200': doc.json('Flags', { type: 'object', properties: { supports_preview_metadata: { type: 'boolean' }, max_upload_size: { type: 'integer' } } }) },
      },
      handler(_req, res) {
        sendJson(res, serverFeatures(ctx));
      },
    },
  ];
}
