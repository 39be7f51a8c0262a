/**
 * Keeps loaded models between runs, keyed by file, so a changed seed or LoRA strength never reloads a
 * checkpoint. Holds at most `capacity` models. A model pushed out is only retired: values made from it may
 * still be in use until the current run ends, so it is released by `releaseRetired`, which the executor calls
 * after each run; whoever cached such values is told through `onEvict`.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { openCheckpoint } from '../models/checkpoint.ts';
import { LoadedModel } from './loaded-model.ts';
import type { SessionOptions } from './session.ts';

export class ModelCache {
  private readonly models = new Map<string, { stamp: string; model: LoadedModel }>();
  private readonly retired: LoadedModel[] = [];
  private readonly evictListeners: (() => void)[] = [];

  constructor(
    private readonly sessionOptions: SessionOptions,
    private readonly tokenizersDir: string,
    private readonly capacity = 2,
  ) {}

  /** Called whenever a model leaves the cache (values made from it must not be reused). */
  onEvict(listener: () => void): void {
    this.evictListeners.push(listener);
  }

  /** The loaded model for a checkpoint path; reopened if the file changed on disk. */
  async load(path: string): Promise<LoadedModel> {
    const key = resolve(path);
    const stat = statSync(key);
    const stamp = `${stat.size}:${stat.mtimeMs}`;
    const cached = this.models.get(key);
    if (cached && cached.stamp === stamp) {
      this.models.delete(key);
      this.models.set(key, cached);
      return cached.model;
    }
    if (cached) this.retire(key);
    const model = new LoadedModel(openCheckpoint(key), this.sessionOptions, this.tokenizersDir);
    this.models.set(key, { stamp, model });
    while (this.models.size > this.capacity) this.retire(this.models.keys().next().value!);
    return model;
  }

  private retire(key: string): void {
    const entry = this.models.get(key);
    this.models.delete(key);
    if (!entry) return;
    this.retired.push(entry.model);
    for (const listener of this.evictListeners) listener();
  }

  /** Releases the models retired during the last run. */
  async releaseRetired(): Promise<void> {
    for (const model of this.retired.splice(0)) await model.release();
  }

  /** Unloads every model (between runs). */
  async clear(): Promise<void> {
    for (const key of [...this.models.keys()]) this.retire(key);
    await this.releaseRetired();
  }
}
