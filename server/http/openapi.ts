/** The OpenAPI 3 document, built from the route list (each route carries its own operation). */
import type { WireJson } from '../events/hub.ts';
import type { Route } from './route.ts';

export function openApiDocument(routes: readonly Route[], version: string): { [key: string]: WireJson } {
  const paths: { [path: string]: { [method: string]: WireJson } } = {};
  for (const r of routes) {
    paths[r.path] ??= {};
    paths[r.path][r.method] = { ...r.doc, tags: [...r.doc.tags], parameters: r.doc.parameters ? [...r.doc.parameters] : undefined } as { [key: string]: WireJson };
  }
  return JSON.parse(
    JSON.stringify({
      openapi: '3.0.3',
      info: {
        title: 'LoraGraph server API',
        version,
        description:
          'ComfyUI-compatible HTTP API. Every route is served at /PATH and at /api/PATH. Progress: socket.io (same event names and data as ComfyUI, plus `preview` with JPEG bytes) and a raw WebSocket at /ws?clientId=ID speaking ComfyUI’s protocol. Integers in JSON keep 64 bits (seeds up to 2^64−1).',
      },
      servers: [{ url: '/' }, { url: '/api' }],
      paths,
    }),
  ) as { [key: string]: WireJson };
}
