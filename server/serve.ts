/**
 * `loragraph serve`: the embedded models, the job store (jobs left running by a crash are queued again), the
 * engine worker, the HTTP API with socket.io and `/ws` on one port.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ensureDefaultModel, modelFolders } from '../engine/models/embedded.ts';
import { NODES } from '../nodes/index.ts';
import { serverThreadEnv, type AppConfig } from './config.ts';
import { attachSocketIo } from './events/socketio.ts';
import { attachWs } from './events/ws.ts';
import { createApp } from './http/app.ts';
import type { ServerContext } from './http/route.ts';
import { serverFeatures } from './http/routes/info.ts';
import { JobRunner } from './queue/runner.ts';
import { JobStore } from './queue/store.ts';
import { WorkerHost } from './worker/worker-host.ts';

/** A job that was running when the server died this many times is recorded as failed instead of re-run. */
export const MAX_ATTEMPTS = 3;

export const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

export interface ServeOptions {
  readonly config: AppConfig;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly maxUploadBytes: number;
  readonly log?: (line: string) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly context: ServerContext;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const { config } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const folders = modelFolders(config.modelsDir);
  ensureDefaultModel(folders);
  mkdirSync(folders.loras, { recursive: true });

  const store = new JobStore(join(config.dataDir, 'loragraph.sqlite'));
  const { requeued, failed } = store.recover(MAX_ATTEMPTS);
  if (requeued.length) log(`queued again after an unclean stop: ${requeued.join(', ')}`);
  if (failed.length) log(`not retried (the server stopped ${MAX_ATTEMPTS} times while running them): ${failed.join(', ')}`);

  const runner = new JobRunner(store, () => new WorkerHost(config), log);
  const context: ServerContext = { config, store, runner, nodes: NODES, env: serverThreadEnv(config), maxUploadBytes: options.maxUploadBytes, version: VERSION };
  const http = createServer(createApp(context));
  const io = attachSocketIo(http, runner.hub);
  const wss = attachWs(http, runner.hub, () => serverFeatures(context));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => resolve());
  });
  runner.warmUp();
  runner.start();
  const port = (http.address() as AddressInfo).port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    context,
    async close() {
      await runner.stop();
      for (const client of wss.clients) client.terminate();
      await io.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      store.close();
    },
  };
}
