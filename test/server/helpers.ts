/**
 * Shared pieces of the server tests: temporary folders, a real server (in-process or as a child process),
 * and a `/ws` client that records ComfyUI messages and binary frames and waits for the one a test needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { resolveConfig, type AppConfig } from '../../server/config.ts';
import { startServer, type RunningServer } from '../../server/serve.ts';
import { repoRoot } from '../helpers/fixtures.ts';

export const TINY = 'loragraph-tiny-random.safetensors';

export function tempConfig(prefix = 'loragraph-server-'): AppConfig {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return resolveConfig({ models: join(root, 'models'), input: join(root, 'input'), output: join(root, 'output'), temp: join(root, 'temp'), data: join(root, 'data') }, {});
}

/** Removes the folders tempConfig made. */
export function removeTempConfig(config: AppConfig | undefined): void {
  if (config) rmSync(dirname(config.dataDir), { recursive: true, force: true });
}

export function startTestServer(config: AppConfig = tempConfig()): Promise<RunningServer> {
  return startServer({ config, host: '127.0.0.1', port: 0, maxUploadBytes: 1024 * 1024, log: () => {} });
}

/** The txt2img example on the tiny model, with changes (node id → inputs to merge). */
export function txt2img(changes: Record<string, Record<string, Json>> = {}): Record<string, { class_type: string; inputs: Record<string, Json> }> {
  const prompt = parseJson(readFileSync(join(repoRoot, 'workflows', 'txt2img.json'), 'utf8')) as Record<string, { class_type: string; inputs: Record<string, Json> }>;
  prompt['3'].inputs.steps = 4;
  for (const [id, inputs] of Object.entries(changes)) Object.assign(prompt[id].inputs, inputs);
  return prompt;
}

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  readonly json: Json;
}

export async function request(base: string, path: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let json: Json = null;
  try {
    json = text ? parseJson(text) : null;
  } catch {
    // Not JSON (plain-text errors, images).
  }
  return { status: res.status, text, json };
}

export function postJson(base: string, path: string, body: unknown): Promise<HttpAnswer> {
  return request(base, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stringifyJson(body) });
}

export interface WsMessage {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

/** A ComfyUI-protocol client of `/ws`. */
export class WsRecorder {
  readonly messages: WsMessage[] = [];
  readonly binary: Buffer[] = [];
  private waiters: { test: (m: WsMessage) => boolean; resolve: (m: WsMessage) => void }[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw, isBinary) => {
      if (isBinary) {
        this.binary.push(raw as Buffer);
        return;
      }
      const m = JSON.parse(raw.toString()) as WsMessage;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<WsRecorder> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers });
      const recorder = new WsRecorder(socket);
      socket.once('open', () => resolve(recorder));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** The first message (already received or coming) that passes `test`. */
  waitFor(test: (m: WsMessage) => boolean, timeoutMs = 60_000): Promise<WsMessage> {
    const seen = this.messages.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Messages about one job, in order. */
  of(promptId: string): WsMessage[] {
    return this.messages.filter((m) => m.data?.prompt_id === promptId);
  }

  /** Resolves when the job has finished (success, error or interrupt). */
  finished(promptId: string, timeoutMs?: number): Promise<WsMessage> {
    return this.waitFor((m) => m.data?.prompt_id === promptId && ['execution_success', 'execution_error', 'execution_interrupted'].includes(m.type), timeoutMs);
  }

  close(): void {
    this.socket.close();
  }
}

/** The server as a child process (`loragraph serve`), for restart tests; resolves with its URL. */
export function spawnServer(config: AppConfig, extraArgs: string[] = []): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const args = ['bin/loragraph.js', 'serve', '--port', '0', '--models', config.modelsDir, '--input', config.inputDir, '--output', config.outputDir, '--temp', config.tempDir, '--data', config.dataDir, ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1], stderr: () => err });
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
}
