/**
 * `loragraph run workflow --server URL`: submits to a running server (LoraGraph or ComfyUI: only their common
 * API is used — POST /prompt and the /ws messages), prints its progress, and exits non-zero when the server
 * refuses the workflow or the job fails. Ctrl-C interrupts the job on the server.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import WebSocket from 'ws';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import type { NodeErrors, PromptError } from '../executor/validate.ts';
import { formatValidation } from '../executor/validate.ts';
import { RunProgress } from './progress.ts';
import { readWorkflow } from './run.ts';

export interface RemoteOptions {
  readonly set: readonly string[];
  readonly quiet?: boolean;
  /** Download the images into this folder. */
  readonly out?: string;
}

interface ImageRef {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: string;
}

type Outcome = { ok: true; images: ImageRef[] } | { ok: false; message: string };

function openSocket(url: URL): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', (err) => reject(new Error(`cannot open ${url.href}: ${err.message}`)));
  });
}

/** Follows one job's messages until it succeeds, fails or is interrupted. */
function watchJob(ws: WebSocket, promptId: string, display: RunProgress): Promise<Outcome> {
  const images: ImageRef[] = [];
  return new Promise((resolve) => {
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      const { type, data } = JSON.parse(raw.toString()) as { type: string; data: Record<string, unknown> };
      if (data?.prompt_id !== promptId) return;
      if (type === 'executing' && typeof data.node === 'string') display.executing(data.node);
      else if (type === 'progress') display.progress(String(data.node), Number(data.value), Number(data.max));
      else if (type === 'executed') images.push(...((data.output as { images?: ImageRef[] } | null)?.images ?? []));
      else if (type === 'execution_success') resolve({ ok: true, images });
      else if (type === 'execution_interrupted') resolve({ ok: false, message: 'Interrupted' });
      else if (type === 'execution_error') {
        const where = data.node_id ? ` in node ${String(data.node_id)} (${String(data.node_type)})` : '';
        resolve({ ok: false, message: `Error${where}: ${String(data.exception_message)}` });
      }
    });
    ws.on('close', () => resolve({ ok: false, message: 'the connection to the server closed before the job finished' }));
  });
}

function viewUrl(base: URL, image: ImageRef): URL {
  const url = new URL('view', base);
  url.search = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type }).toString();
  return url;
}

export async function runOnServer(file: string, server: string, options: RemoteOptions): Promise<number> {
  const { prompt, workflow } = readWorkflow(file, options.set);
  const base = new URL(server.endsWith('/') ? server : `${server}/`);
  const clientId = randomUUID().replaceAll('-', '');
  const promptId = randomUUID();
  const wsUrl = new URL(`ws?clientId=${clientId}`, base);
  wsUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = await openSocket(wsUrl);
  const display = new RunProgress((node) => prompt[node]?.class_type, options.quiet);
  const finished = watchJob(ws, promptId, display);
  const interrupt = () => void fetch(new URL('interrupt', base), { method: 'POST', body: JSON.stringify({ prompt_id: promptId }) });
  try {
    const body = { prompt, client_id: clientId, prompt_id: promptId, extra_data: workflow ? { extra_pnginfo: { workflow } } : {} };
    const res = await fetch(new URL('prompt', base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: stringifyJson(body) });
    const text = await res.text();
    if (!res.ok) {
      let answer: Json = text;
      try {
        answer = parseJson(text);
      } catch {
        // Not JSON: print the text as it came.
      }
      const refusal = answer as { error?: PromptError; node_errors?: NodeErrors };
      console.error(refusal.error ? formatValidation(refusal.error, refusal.node_errors ?? {}) : `the server refused the workflow (${res.status}): ${text}`);
      return 1;
    }
    process.once('SIGINT', interrupt);
    const outcome = await finished;
    display.stop();
    if (!outcome.ok) {
      console.error(outcome.message);
      return 1;
    }
    for (const image of outcome.images) {
      const url = viewUrl(base, image);
      if (!options.out) {
        console.log(url.href);
        continue;
      }
      const download = await fetch(url);
      if (!download.ok) throw new Error(`downloading ${url.href} failed: ${download.status}`);
      mkdirSync(options.out, { recursive: true });
      const path = join(options.out, basename(image.filename));
      writeFileSync(path, Buffer.from(await download.arrayBuffer()));
      console.log(path);
    }
    return 0;
  } finally {
    process.off('SIGINT', interrupt);
    ws.close();
  }
}
