/**
 * The express app: every route at `/…` and `/api/…`, ComfyUI's origin check, bodies read as raw bytes (JSON is
 * parsed losslessly by the routes), typed errors turned into 400/404 answers, the status page at `/`.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { fileURLToPath } from 'node:url';
import { LoraGraphError, NotFoundError } from '../../engine/errors.ts';
import { sendJson } from './json.ts';
import { openApiDocument } from './openapi.ts';
import { originAllowed } from './origin.ts';
import { doc, expressPath, type BodyKind, type Route, type ServerContext } from './route.ts';
import { fileRoutes } from './routes/files.ts';
import { infoRoutes } from './routes/info.ts';
import { loraRoutes } from './routes/loras.ts';
import { promptRoutes } from './routes/prompt.ts';
import { queueRoutes } from './routes/queue.ts';
import { workflowRoutes } from './routes/workflow.ts';

/** JSON bodies (workflows) can be large but never need the upload limit. */
const JSON_LIMIT = 32 * 1024 * 1024;

const STATIC_DIR = fileURLToPath(new URL('../static/', import.meta.url));

export function apiRoutes(ctx: ServerContext): Route[] {
  const routes = [...promptRoutes(ctx), ...queueRoutes(ctx), ...fileRoutes(ctx), ...infoRoutes(ctx), ...workflowRoutes(ctx), ...loraRoutes(ctx)];
  const openapi: Route = {
    method: 'get',
    path: '/openapi.json',
    body: 'none',
    doc: { summary: 'This API description (OpenAPI 3)', tags: ['system'], responses: { '200': doc.json('OpenAPI document') } },
    handler(_req, res) {
      sendJson(res, openApiDocument(routes, ctx.version));
    },
  };
  routes.push(openapi);
  return routes;
}

function bodyParser(kind: BodyKind, uploadLimit: number): express.RequestHandler[] {
  if (kind === 'none') return [];
  return [express.raw({ type: () => true, limit: kind === 'json' ? JSON_LIMIT : uploadLimit })];
}

export function createApp(ctx: ServerContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    if (!originAllowed(req.headers)) {
      res.status(403).type('text/plain').send('cross-origin request refused');
      return;
    }
    next();
  });
  for (const route of apiRoutes(ctx)) {
    const handler = async (req: Request, res: Response, next: NextFunction) => {
      res.setHeader('Cache-Control', 'no-cache');
      try {
        await route.handler(req, res);
      } catch (err) {
        next(err);
      }
    };
    for (const prefix of ['', '/api']) app[route.method](prefix + expressPath(route.path), ...bodyParser(route.body, ctx.maxUploadBytes), handler);
  }
  app.use(express.static(STATIC_DIR, { index: 'index.html' }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: number }).status;
    if (status === 413) return res.status(413).type('text/plain').send(`the request body is larger than the limit of ${(err as { limit?: number }).limit ?? ctx.maxUploadBytes} bytes (uploads: --max-upload-size)`);
    if (err instanceof LoraGraphError) {
      return sendJson(res, { error: { type: err.code, message: err.message, details: '', extra_info: {} } }, err instanceof NotFoundError ? 404 : 400);
    }
    if (typeof status === 'number' && status >= 400 && status < 500) return res.status(status).type('text/plain').send((err as Error).message);
    console.error(err);
    res.status(500).type('text/plain').send(`internal error: ${(err as Error).message}`);
  });
  return app;
}
