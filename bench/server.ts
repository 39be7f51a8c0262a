/**
 * Server benchmark: the server runs as its own process (as users run it) on the embedded tiny model, and this
 * process measures it as a client would:
 * - p50/p99 latency of GET /api/queue while a generation runs (goal: p99 ≤ 50 ms: the engine never blocks
 *   the server thread);
 * - p50/p99 socket.io delivery while a generation runs: from a queue change (POST /api/queue) to the `status`
 *   event it triggers arriving over socket.io (an upper bound: it includes the HTTP request);
 * - time from POST /prompt to the first progress event (loader cached, as when iterating on a workflow);
 * - throughput of 50 queued tiny-model jobs (64x64, 4 steps).
 * Prints a table and writes JSON under bench/results/. Run alone: `npx tsx bench/server.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { io, type Socket } from 'socket.io-client';
import { percentile } from './stats.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ServerBenchResult {
  readonly date: string;
  readonly cpus: number;
  readonly queueLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  readonly socketIoDeliveryMs: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  readonly postToFirstProgressMs: { readonly p50: number; readonly runs: number };
  readonly throughput: { readonly jobs: number; readonly seconds: number; readonly jobsPerSecond: number; readonly queueAllMs: number };
  readonly goalP99QueueLatencyMs: 50;
  readonly goalMet: boolean;
}

type Prompt = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

function prompt(seed: number, steps: number, size: number): Prompt {
  return {
    4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'loragraph-tiny-random.safetensors' } },
    5: { class_type: 'EmptyLatentImage', inputs: { width: size, height: size, batch_size: 1 } },
    6: { class_type: 'CLIPTextEncode', inputs: { text: 'a red circle', clip: ['4', 1] } },
    7: { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
    3: { class_type: 'KSampler', inputs: { seed, steps, cfg: 6, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    8: { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    9: { class_type: 'SaveImage', inputs: { filename_prefix: 'bench', images: ['8', 0] } },
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

function startServer(root: string): Promise<{ child: ChildProcess; url: string }> {
  const folders = ['models', 'input', 'output', 'temp', 'data'].flatMap((f) => [`--${f}`, join(root, f)]);
  const child = spawn(process.execPath, ['bin/loragraph.js', 'serve', '--port', '0', ...folders], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
  });
}

class Client {
  private constructor(
    readonly url: string,
    readonly socket: Socket,
  ) {}

  static async connect(url: string): Promise<Client> {
    const socket = io(url, { auth: { clientId: 'bench' }, transports: ['websocket'] });
    await new Promise((resolve) => socket.once('status', resolve));
    return new Client(url, socket);
  }

  async post(path: string, body: unknown): Promise<unknown> {
    const res = await fetch(`${this.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async queue(p: Prompt): Promise<string> {
    return ((await this.post('/api/prompt', { prompt: p, client_id: 'bench' })) as { prompt_id: string }).prompt_id;
  }

  /** Resolves on the first `event` whose data passes `test`. */
  next<T>(event: string, test: (data: T) => boolean = () => true): Promise<T> {
    return new Promise((resolve) => {
      const on = (data: T) => {
        if (!test(data)) return;
        this.socket.off(event, on);
        resolve(data);
      };
      this.socket.on(event, on);
    });
  }
}

type Progress = { prompt_id: string; value: number; max: number };

/** GET /api/queue and socket.io delivery while one long generation runs. */
async function latencyUnderLoad(client: Client) {
  const done = new Set<string>();
  client.socket.on('execution_success', (d: { prompt_id: string }) => done.add(d.prompt_id));
  client.socket.on('execution_interrupted', (d: { prompt_id: string }) => done.add(d.prompt_id));
  const id = await client.queue(prompt(1, 400, 128));
  await client.next<Progress>('progress', (d) => d.prompt_id === id && d.value >= 2);
  const queueMs: number[] = [];
  const socketMs: number[] = [];
  for (let i = 0; i < 400 && !done.has(id); i++) {
    const t0 = performance.now();
    const res = await fetch(`${client.url}/api/queue`);
    await res.text();
    queueMs.push(performance.now() - t0);
    if (i % 4 === 0) {
      const t1 = performance.now();
      const status = client.next('status');
      await client.post('/api/queue', { move_to_front: [] });
      await status;
      socketMs.push(performance.now() - t1);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const finished = client.next<{ prompt_id: string }>('execution_interrupted', (d) => d.prompt_id === id);
  await client.post('/api/interrupt', { prompt_id: id });
  if (!done.has(id)) await Promise.race([finished, client.next<{ prompt_id: string }>('execution_success', (d) => d.prompt_id === id)]);
  return { queueMs, socketMs };
}

async function timeToFirstProgress(client: Client, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const first = client.next<Progress>('progress');
    const id = await client.queue(prompt(100 + i, 4, 64));
    await first;
    times.push(performance.now() - t0);
    await client.next<{ prompt_id: string }>('execution_success', (d) => d.prompt_id === id);
  }
  return times;
}

async function throughput(client: Client, jobs: number) {
  const finished = new Set<string>();
  let resolveAll: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const ids: string[] = [];
  client.socket.on('execution_success', (d: { prompt_id: string }) => {
    finished.add(d.prompt_id);
    if (ids.length === jobs && ids.every((id) => finished.has(id))) resolveAll();
  });
  const t0 = performance.now();
  for (let i = 0; i < jobs; i++) ids.push(await client.queue(prompt(1000 + i, 4, 64)));
  const queueAllMs = performance.now() - t0;
  if (ids.every((id) => finished.has(id))) resolveAll!();
  await all;
  const seconds = (performance.now() - t0) / 1000;
  return { jobs, seconds: round(seconds), jobsPerSecond: round(jobs / seconds), queueAllMs: round(queueAllMs) };
}

export async function runServerBenchmark(): Promise<ServerBenchResult> {
  const root = mkdtempSync(join(tmpdir(), 'loragraph-bench-server-'));
  const { child, url } = await startServer(root);
  try {
    const client = await Client.connect(url);
    // Load the model once, so the figures below are the server's, not the first load's.
    const warm = await client.queue(prompt(0, 2, 64));
    await client.next<{ prompt_id: string }>('execution_success', (d) => d.prompt_id === warm);

    const { queueMs, socketMs } = await latencyUnderLoad(client);
    const firstProgress = await timeToFirstProgress(client, 5);
    const jobs = await throughput(client, 50);
    client.socket.close();
    const stats = (v: number[]) => ({ p50: round(percentile(v, 50)), p99: round(percentile(v, 99)), max: round(Math.max(...v)), samples: v.length });
    const queueLatencyMs = stats(queueMs);
    return {
      date: new Date().toISOString(),
      cpus: cpus().length,
      queueLatencyMs,
      socketIoDeliveryMs: stats(socketMs),
      postToFirstProgressMs: { p50: round(percentile(firstProgress, 50)), runs: firstProgress.length },
      throughput: jobs,
      goalP99QueueLatencyMs: 50,
      goalMet: queueLatencyMs.p99 <= 50,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
}

export function formatServerBenchmark(r: ServerBenchResult): string {
  const rows: [string, string][] = [
    ['GET /api/queue during generation (p50 / p99 / max)', `${r.queueLatencyMs.p50} / ${r.queueLatencyMs.p99} / ${r.queueLatencyMs.max} ms (${r.queueLatencyMs.samples} requests)`],
    ['socket.io event after a queue change (p50 / p99 / max)', `${r.socketIoDeliveryMs.p50} / ${r.socketIoDeliveryMs.p99} / ${r.socketIoDeliveryMs.max} ms (${r.socketIoDeliveryMs.samples} events)`],
    ['POST /prompt → first progress event (p50)', `${r.postToFirstProgressMs.p50} ms (${r.postToFirstProgressMs.runs} runs)`],
    [`throughput, ${r.throughput.jobs} tiny jobs (64x64, 4 steps)`, `${r.throughput.jobsPerSecond} jobs/s (${r.throughput.seconds} s; queueing all: ${r.throughput.queueAllMs} ms)`],
    ['goal: p99 API latency ≤ 50 ms', r.goalMet ? 'met' : 'NOT met'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

async function main(): Promise<void> {
  const result = await runServerBenchmark();
  console.log(formatServerBenchmark(result));
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'server.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
