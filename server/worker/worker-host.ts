/**
 * The main thread's handle on the engine worker: starts it, runs one prompt at a time, relays its events,
 * and interrupts through a shared flag the worker polls between sampler steps and nodes.
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionResult } from '../executor/executor.ts';
import type { EngineEvent, FromWorker, ToWorker, WorkerConfig } from './protocol.ts';

export interface ExecuteRequest {
  readonly promptId: string;
  readonly promptText: string;
  readonly extraPngInfoText?: string;
  readonly targets?: readonly string[];
}

export class WorkerHost {
  private readonly worker: Worker;
  private readonly flag: Int32Array;
  private pending = new Map<string, { resolve: (r: ExecutionResult) => void; onEvent: (e: EngineEvent) => void }>();
  private freed: (() => void)[] = [];
  private exited = false;
  readonly ready: Promise<{ provider: string; providerNote?: string }>;

  constructor(config: Omit<WorkerConfig, 'interruptFlag'>) {
    const interruptFlag = new SharedArrayBuffer(4);
    this.flag = new Int32Array(interruptFlag);
    this.worker = new Worker(new URL('./engine-worker-entry.js', import.meta.url), {
      workerData: { ...config, interruptFlag } satisfies WorkerConfig,
    });
    let onReady: (v: { provider: string; providerNote?: string }) => void;
    let onFail: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') onReady({ provider: message.provider, providerNote: message.providerNote });
      else if (message.type === 'event') this.pending.get(message.promptId)?.onEvent(message.event);
      else if (message.type === 'done') {
        const p = this.pending.get(message.promptId);
        this.pending.delete(message.promptId);
        p?.resolve(message.result);
      } else if (message.type === 'freed') this.freed.shift()?.();
      else if (message.type === 'fatal') {
        onFail(new Error(message.message));
        this.failAll(message.message);
      }
    });
    this.worker.on('error', (err) => {
      onFail(err);
      this.failAll(err.message);
    });
    // A worker that ended (crash, out of memory, terminate) must not leave callers waiting forever.
    this.worker.on('exit', (code) => {
      this.exited = true;
      onFail(new Error(`the engine worker exited (code ${code})`));
      this.failAll(`the engine worker exited (code ${code})`);
      for (const resolve of this.freed.splice(0)) resolve();
    });
  }

  /** False once the worker has ended; start a new host then. */
  get alive(): boolean {
    return !this.exited;
  }

  private failAll(message: string): void {
    for (const [id, p] of this.pending) {
      p.resolve(workerFailure(message));
      this.pending.delete(id);
    }
  }

  execute(request: ExecuteRequest, onEvent: (e: EngineEvent) => void = () => {}): Promise<ExecutionResult> {
    if (this.exited) return Promise.resolve(workerFailure('the engine worker has exited'));
    return new Promise((resolve) => {
      this.pending.set(request.promptId, { resolve, onEvent });
      this.worker.postMessage({ type: 'execute', ...request } satisfies ToWorker);
    });
  }

  interrupt(): void {
    Atomics.store(this.flag, 0, 1);
  }

  free(unloadModels: boolean, freeMemory: boolean): Promise<void> {
    return new Promise((resolve) => {
      this.freed.push(resolve);
      this.worker.postMessage({ type: 'free', unloadModels, freeMemory } satisfies ToWorker);
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

function workerFailure(message: string): ExecutionResult {
  return { status: 'error', outputs: {}, failure: { nodeId: '', nodeType: '', message: `engine worker failed: ${message}`, type: 'worker_error', traceback: [message], executed: [] } };
}
