/**
 * Takes jobs from the store one at a time, runs them in the engine worker, relays their events to the clients
 * (ComfyUI's message shapes and order) and writes the outcome to the history. A worker that dies is replaced
 * before the next job. `/free` requests are honoured between jobs, as in ComfyUI.
 */
import { isJsonObject, parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { EventHub, statusData, toWire, type ConnectionState, type WireJson } from '../events/hub.ts';
import type { ExecutionResult } from '../executor/executor.ts';
import { isLink } from '../executor/prompt.ts';
import type { WorkerHost } from '../worker/worker-host.ts';
import type { EngineEvent } from '../worker/protocol.ts';
import type { JobStore, Outcome, StoredJob } from './store.ts';

/** How long a stopping server waits for the running job to reach an interruptible point. */
const STOP_GRACE_MS = 10_000;

interface Running {
  readonly job: StoredJob;
  node?: string;
  cached: string[];
  interruptRequested: boolean;
}

export interface FreeRequest {
  readonly unloadModels: boolean;
  readonly freeMemory: boolean;
}

export class JobRunner {
  readonly hub: EventHub;
  /** The provider the worker runs on, once it is up (for /system_stats). */
  provider = 'cpu';
  private host?: WorkerHost;
  private hostReady?: Promise<WorkerHost>;
  private running?: Running;
  private wake?: () => void;
  private stopping = false;
  private freeRequest?: FreeRequest;
  private loop?: Promise<void>;

  constructor(
    private readonly store: JobStore,
    private readonly startWorker: () => WorkerHost,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {
    this.hub = new EventHub(() => this.connectionState());
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Call after the queue changed: tells every client and wakes the loop. */
  queueChanged(): void {
    this.hub.send({ type: 'status', data: statusData(this.store.remaining()) });
    this.wake?.();
  }

  /** Interrupts the running job (only if it is `promptId`, when given). True when one was interrupted. */
  interrupt(promptId?: string): boolean {
    const r = this.running;
    if (!r || (promptId !== undefined && r.job.promptId !== promptId)) return false;
    r.interruptRequested = true;
    this.host?.interrupt();
    return true;
  }

  /** Unloads models and/or drops cached outputs after the current job (at once when idle). */
  free(request: FreeRequest): void {
    this.freeRequest = {
      unloadModels: request.unloadModels || (this.freeRequest?.unloadModels ?? false),
      freeMemory: request.freeMemory || (this.freeRequest?.freeMemory ?? false),
    };
    this.wake?.();
  }

  /**
   * Stops after taking the running job back into the queue (it runs again on the next start). The job is
   * interrupted first and given a moment to wind down: terminating the worker in the middle of an
   * onnxruntime call can abort the whole process.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.running) {
      this.host?.interrupt();
      await Promise.race([this.loop, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
    }
    await this.host?.terminate();
    await this.loop;
  }

  private connectionState(): ConnectionState {
    const r = this.running;
    return { queueRemaining: this.store.remaining(), running: r && { promptId: r.job.promptId, clientId: r.job.clientId ?? undefined, node: r.node } };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.applyFree();
      const job = this.store.next();
      if (!job) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      if (!this.store.start(job.promptId)) continue;
      await this.runJob(job);
    }
  }

  private async applyFree(): Promise<void> {
    const request = this.freeRequest;
    if (!request || !this.host?.alive) return;
    this.freeRequest = undefined;
    await this.host.free(request.unloadModels, request.freeMemory);
  }

  /** Starts the engine worker now rather than with the first job. */
  warmUp(): void {
    this.worker().catch((err: unknown) => this.log(`the engine worker could not start: ${(err as Error).message}`));
  }

  private worker(): Promise<WorkerHost> {
    if (!this.host?.alive || !this.hostReady) {
      const host = this.startWorker();
      this.host = host;
      this.hostReady = host.ready.then(({ provider, providerNote }) => {
        this.provider = provider;
        if (providerNote) this.log(providerNote);
        return host;
      });
    }
    return this.hostReady;
  }

  private async runJob(job: StoredJob): Promise<void> {
    const running: Running = { job, cached: [], interruptRequested: false };
    this.running = running;
    this.queueChanged();
    const clientId = job.clientId ?? undefined;
    const send = (type: string, data: { [key: string]: WireJson }) => this.hub.send({ type, data: { ...data, prompt_id: job.promptId }, clientId });
    const messages: [string, Json][] = [];
    const record = (type: string, data: { [key: string]: WireJson }) => {
      const full = { ...data, prompt_id: job.promptId, timestamp: Date.now() };
      messages.push([type, full]);
      send(type, full);
    };
    const onEvent = (event: EngineEvent) => {
      switch (event.name) {
        case 'execution_start':
          // An interrupt that arrived before the worker took the job would be lost when it resets its flag.
          if (running.interruptRequested) this.host?.interrupt();
          return record('execution_start', {});
        case 'execution_cached':
          running.cached = event.nodes;
          return record('execution_cached', { nodes: event.nodes });
        case 'executing':
          running.node = event.node;
          return send('executing', { node: event.node, display_node: event.node });
        case 'progress':
          return send('progress', { value: event.value, max: event.max, node: event.node });
        case 'preview':
          return this.hub.preview({ promptId: job.promptId, nodeId: event.node, jpeg: event.jpeg, clientId });
        case 'executed':
          return send('executed', { node: event.node, display_node: event.node, output: toWire(event.output) });
      }
    };
    let result: ExecutionResult;
    try {
      const host = await this.worker();
      result = await host.execute({ promptId: job.promptId, promptText: job.promptText, extraPngInfoText: extraPngInfoText(job.extraDataText), targets: job.outputs }, onEvent);
    } catch (err) {
      result = { status: 'error', outputs: {}, failure: { nodeId: '', nodeType: '', message: `the engine worker could not start: ${(err as Error).message}`, type: 'worker_error', traceback: [], executed: [] } };
    }
    this.running = undefined;
    if (this.stopping) {
      this.store.release(job.promptId);
      return;
    }
    const outcome: Outcome = result.status;
    if (result.status === 'success') record('execution_success', {});
    else {
      const f = result.failure;
      const common = { node_id: f.nodeId || null, node_type: f.nodeType || null, executed: f.executed };
      if (result.status === 'interrupted') record('execution_interrupted', common);
      else {
        this.log(`job ${job.promptId} failed${f.nodeId ? ` in node ${f.nodeId} (${f.nodeType})` : ''}: ${f.message}\n${f.traceback.join('\n')}`);
        record('execution_error', {
          ...common,
          exception_message: f.message,
          exception_type: f.type,
          traceback: f.traceback,
          current_inputs: currentInputs(job.promptText, f.nodeId),
          current_outputs: [...running.cached, ...f.executed],
        });
      }
    }
    this.store.finish(job.promptId, { outcome, outputs: result.outputs, messages });
    this.queueChanged();
    send('executing', { node: null });
  }
}

/** `extra_data.extra_pnginfo` as lossless JSON text (embedded in saved images), if present. */
function extraPngInfoText(extraDataText: string): string | undefined {
  const extra = parseJson(extraDataText, 'extra_data');
  const info = isJsonObject(extra) ? extra.extra_pnginfo : undefined;
  return info === undefined ? undefined : stringifyJson(info);
}

/** The failing node's constant inputs, ComfyUI-style (`{name: [value]}`), for execution_error. */
function currentInputs(promptText: string, nodeId: string): { [key: string]: WireJson } {
  if (!nodeId) return {};
  const prompt = parseJson(promptText, 'prompt') as Record<string, { inputs?: Record<string, Json> }>;
  const inputs = prompt[nodeId]?.inputs ?? {};
  return Object.fromEntries(Object.entries(inputs).filter(([, v]) => !isLink(v)).map(([k, v]) => [k, [toWire(v)]]));
}
