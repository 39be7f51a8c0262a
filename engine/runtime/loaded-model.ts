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

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    this.checkpoint.close();
  }
}
