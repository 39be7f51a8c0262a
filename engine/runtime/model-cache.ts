/**
 * Keeps loaded models between runs, keyed by file, so a changed seed or LoRA strength never reloads a
 * checkpoint. Holds at most `capacity` models; the least recently used one is released first.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { openCheckpoint } from '../models/checkpoint.ts';
import { LoadedModel } from './loaded-model.ts';
import type { SessionOptions } from './session.ts';

export class ModelCache {
  private readonly models = new Map<string, { stamp: string; model: LoadedModel }>();

  constructor(
    private readonly sessionOptions: SessionOptions,
    private readonly tokenizersDir: string,
    private readonly capacity = 2,
  ) {}

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
    if (cached) await this.evict(key);
    const model = new LoadedModel(openCheckpoint(key), this.sessionOptions, this.tokenizersDir);
    this.models.set(key, { stamp, model });
    while (this.models.size > this.capacity) await this.evict(this.models.keys().next().value!);
    return model;
  }

  private async evict(key: string): Promise<void> {
    const entry = this.models.get(key);
    this.models.delete(key);
    await entry?.model.release();
  }

  async clear(): Promise<void> {
    for (const key of [...this.models.keys()]) await this.evict(key);
  }
}
