/**
 * A route is declared once with its OpenAPI operation: the app mounts it at `/…` and `/api/…`, and
 * `/openapi.json` is built from the same list, so the document cannot miss a route.
 */
import type { Request, Response } from 'express';
import type { JobStore } from '../queue/store.ts';
import type { JobRunner } from '../queue/runner.ts';
import type { NodeDefinition, NodeEnv } from '../../nodes/index.ts';
import type { AppConfig } from '../config.ts';
import type { WireJson } from '../events/hub.ts';

/** An OpenAPI 3 operation object (summary and responses at least). */
export interface OperationDoc {
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly parameters?: readonly WireJson[];
  readonly requestBody?: WireJson;
  readonly responses: Readonly<Record<string, WireJson>>;
}

/** How the body is read before the handler runs. */
export type BodyKind = 'none' | 'json' | 'raw' | 'upload';

export interface Route {
  readonly method: 'get' | 'post';
  /** OpenAPI style: `/history/{prompt_id}`. */
  readonly path: string;
  readonly body: BodyKind;
  readonly doc: OperationDoc;
  handler(req: Request, res: Response): void | Promise<void>;
}

export interface ServerContext {
  readonly config: AppConfig;
  readonly store: JobStore;
  readonly runner: JobRunner;
  readonly nodes: ReadonlyMap<string, NodeDefinition>;
  /** For validation, object_info and listings; it never loads a model on the server thread. */
  readonly env: NodeEnv;
  readonly maxUploadBytes: number;
  readonly version: string;
}

/** `{prompt_id}` → `:prompt_id` for express. */
export function expressPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

/** Helpers for the OpenAPI pieces every route repeats. */
export const doc = {
  json: (description: string, schema: WireJson = { type: 'object' }): WireJson => ({ description, content: { 'application/json': { schema } } }),
  empty: (description: string): WireJson => ({ description }),
  query: (name: string, description: string, schema: WireJson = { type: 'string' }, required = false): WireJson => ({ name, in: 'query', required, description, schema }),
  pathParam: (name: string, description: string): WireJson => ({ name, in: 'path', required: true, description, schema: { type: 'string' } }),
  jsonBody: (schema: WireJson, required = true): WireJson => ({ required, content: { 'application/json': { schema } } }),
};
