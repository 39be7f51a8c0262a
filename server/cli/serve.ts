/** `loragraph serve`: flags and environment → the running server; Ctrl-C stops it cleanly. */
import { InvalidInputError } from '../../engine/errors.ts';
import type { AppConfig } from '../config.ts';
import { startServer } from '../serve.ts';

export interface ServeSettings {
  readonly host: string;
  readonly port: number;
  readonly maxUploadBytes: number;
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidInputError(`port "${value}" must be a whole number from 0 to 65535 (0 picks a free one)`);
  return port;
}

export function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidInputError(`${flag} "${value}" must be a number above 0`);
  return n;
}

export function serveSettings(flags: { port?: number; listen?: string | true; maxUploadSize?: number }, env: NodeJS.ProcessEnv = process.env): ServeSettings {
  const port = flags.port ?? (env.LORAGRAPH_PORT ? parsePort(env.LORAGRAPH_PORT) : 8188);
  const host = flags.listen === true ? '0.0.0.0' : (flags.listen ?? env.LORAGRAPH_LISTEN ?? '127.0.0.1');
  const megabytes = flags.maxUploadSize ?? (env.LORAGRAPH_MAX_UPLOAD_MB ? positiveNumber(env.LORAGRAPH_MAX_UPLOAD_MB, 'LORAGRAPH_MAX_UPLOAD_MB') : 100);
  return { host, port, maxUploadBytes: Math.round(megabytes * 1024 * 1024) };
}

export async function serve(config: AppConfig, settings: ServeSettings): Promise<void> {
  const server = await startServer({ config, ...settings });
  // Bound to every interface: the loopback address is the one to open on this machine.
  const shown = ['0.0.0.0', '::'].includes(settings.host) ? `http://127.0.0.1:${server.port}` : server.url;
  console.log(`LoraGraph server listening on ${shown}`);
  if (!['127.0.0.1', '::1', 'localhost'].includes(settings.host)) {
    console.error(`note: bound to ${settings.host}: anyone who can reach this address can queue jobs and read outputs (there is no authentication)`);
  }
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    console.error(`${signal}: stopping (a running job is queued again for the next start)`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
