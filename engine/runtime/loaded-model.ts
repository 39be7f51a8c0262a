/**
 * A checkpoint ready to run: its modules as lazily created sessions and its tokenizers. One instance per
 * checkpoint file is shared by everything that uses that model (the model cache in model-cache.ts).
 */
import { NotFoundError } from '../errors.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import { buildClipGraph } from '../models/clip.ts';
import type { ClipConfig } from '../models/config.ts';
import { buildUNetGraph } from '../models/unet.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from '../models/vae.ts';
import { ClipTokenizer, findTokenizer, type TokenizerKind } from '../tokenizer/index.ts';
import { fileStamp, loraPath, LoraSet, type LoraSpec } from '../lora/index.ts';
import { LowRankMerger } from './low-rank-merge.ts';
import { LoraRuntime } from './lora-runtime.ts';
import { ModuleSession } from './module-session.ts';
import type { SessionOptions } from './session.ts';

export type TextEncoderPrefix = 'te' | 'te1' | 'te2';

export interface TextEncoderInfo {
  readonly prefix: TextEncoderPrefix;
  readonly config: ClipConfig;
  readonly tokenizerKind: TokenizerKind;
}

export class LoadedModel {
  private readonly sessions = new Map<string, ModuleSession>();
  private readonly tokenizers = new Map<TokenizerKind, ClipTokenizer>();
  private readonly loraRuntimes = new Map<string, LoraRuntime>();
  private readonly loraSets = new Map<string, LoraSet>();
  private merger: LowRankMerger | undefined;
  private released = false;

  constructor(
    readonly checkpoint: Checkpoint,
    readonly sessionOptions: SessionOptions,
    private readonly tokenizersDir: string,
  ) {}

  get family() {
    return this.checkpoint.config.family;
  }

  get config() {
    return this.checkpoint.config;
  }

  /** The text encoders in the order their outputs are concatenated (SDXL: CLIP-L, then OpenCLIP-G). */
  textEncoders(): TextEncoderInfo[] {
    const clip = this.config.clip;
    if (this.family === 'sdxl') {
      return clip.map((config, i) => ({ prefix: i === 0 ? 'te1' : 'te2', config, tokenizerKind: i === 0 ? 'clip-l' : 'clip-g' }));
    }
    return clip.map((config) => ({ prefix: 'te', config, tokenizerKind: 'clip-l' }));
  }

  private module(name: string, create: () => ModuleSession): ModuleSession {
    if (this.released) throw new Error(`${this.checkpoint.path} was unloaded; load it again`);
    let s = this.sessions.get(name);
    if (!s) {
      s = create();
      this.sessions.set(name, s);
    }
    return s;
  }

  textEncoder(prefix: TextEncoderPrefix): ModuleSession {
    const info = this.textEncoders().find((t) => t.prefix === prefix);
    if (!info) throw new NotFoundError(`${this.checkpoint.path} has no ${prefix} text encoder`);
    return this.module(prefix, () => new ModuleSession(prefix, (plan) => buildClipGraph(this.checkpoint, prefix, info.config, plan), this.sessionOptions));
  }

  unet(): ModuleSession {
    const config = this.config.unet;
    if (!config) throw new NotFoundError(`${this.checkpoint.path} has no UNet (model.diffusion_model.*): load a full checkpoint`);
    return this.module('unet', () => new ModuleSession('unet', (plan) => buildUNetGraph(this.checkpoint, config, plan), this.sessionOptions));
  }

  vaeDecoder(): ModuleSession {
    const config = this.config.vae;
    if (!config) throw new NotFoundError(`${this.checkpoint.path} has no VAE (first_stage_model.*)`);
    return this.module('vae-decoder', () => new ModuleSession('vae-decoder', (plan) => buildVaeDecoderGraph(this.checkpoint, config, plan), this.sessionOptions));
  }

  vaeEncoder(): ModuleSession {
    const config = this.config.vae;
    if (!config) throw new NotFoundError(`${this.checkpoint.path} has no VAE (first_stage_model.*)`);
    return this.module('vae-encoder', () => new ModuleSession('vae-encoder', (plan) => buildVaeEncoderGraph(this.checkpoint, config, plan), this.sessionOptions));
  }

  tokenizer(kind: TokenizerKind): ClipTokenizer {
    let t = this.tokenizers.get(kind);
    if (!t) {
      t = ClipTokenizer.fromFolder(findTokenizer({ modelPath: this.checkpoint.path, tokenizersDir: this.tokenizersDir, kind }));
      this.tokenizers.set(kind, t);
    }
    return t;
  }

  /** The LoRA state of one module session: `unet`, `te`, `te1` or `te2`. */
  loras(module: 'unet' | TextEncoderPrefix): LoraRuntime {
    let runtime = this.loraRuntimes.get(module);
    if (!runtime) {
      this.merger ??= new LowRankMerger(this.sessionOptions);
      const session = module === 'unet' ? this.unet() : this.textEncoder(module);
      runtime = new LoraRuntime(session, this.checkpoint, `${module}.`, this.merger);
      this.loraRuntimes.set(module, runtime);
    }
    return runtime;
  }

  /**
   * The LoraSet for these specs on this checkpoint, kept while the same specs are asked for again (so applied
   * state is recognised as unchanged); LoRA files are parsed once per process whatever the specs.
   */
  loraSet(specs: readonly LoraSpec[], lorasDir: string): LoraSet | undefined {
    if (specs.length === 0) return undefined;
    // The files' stamps are part of the key: a LoRA re-saved under the same name is read again.
    const key = JSON.stringify([specs, specs.map((s) => fileStamp(loraPath(s.name, lorasDir)))]);
    let set = this.loraSets.get(key);
    if (set) this.loraSets.delete(key);
    else set = LoraSet.open(this.checkpoint, specs, { lorasDir });
    this.loraSets.set(key, set);
    // MODEL and CLIP usually carry different specs; a few recent sets cover both without thrashing.
    while (this.loraSets.size > 8) this.loraSets.delete(this.loraSets.keys().next().value!);
    return set;
  }

  async release(): Promise<void> {
    this.released = true;
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    this.loraRuntimes.clear();
    this.loraSets.clear();
    await this.merger?.release();
    this.merger = undefined;
    this.checkpoint.close();
  }
}
