/**
 * The models every fresh install has without a download, written into the models folder on first use:
 * - the trained demo model and its LoRAs (shipped in assets/demo/, listed in its manifest.json, copied in),
 *   the default everywhere;
 * - a tiny random-weight SD1.x checkpoint with its own small tokenizer, generated deterministically, for tests
 *   and as a fallback;
 * - on request only, a full-size SD1.5-shaped random checkpoint for benchmarks.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainClipBpe, writeClipTokenizerFolder } from '../tokenizer/index.ts';
import { SD15_SPEC, writeRandomSd1Checkpoint, type Sd1Spec } from './generate.ts';

/** Where the user's models live, ComfyUI-style sub-folders. */
export interface ModelFolders {
  readonly root: string;
  readonly checkpoints: string;
  readonly loras: string;
  readonly tokenizers: string;
}

export function modelFolders(root: string): ModelFolders {
  return { root, checkpoints: join(root, 'checkpoints'), loras: join(root, 'loras'), tokenizers: join(root, 'tokenizers') };
}

export const TINY_RANDOM_CHECKPOINT = 'loragraph-tiny-random.safetensors';
/** The trained demo model's file name (tools/train/ship.py writes it and assets/demo/manifest.json). */
export const DEMO_CHECKPOINT = 'loragraph-shapes-sd1.safetensors';
export const SD15_RANDOM_CHECKPOINT = 'sd15-shaped-random.safetensors';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_ASSETS = join(repoRoot, 'assets', 'demo');

/** Words of typical prompts, so the tiny tokenizer produces whole-word tokens for ordinary text. */
const TINY_CORPUS = `a photo of an image picture painting drawing portrait landscape of the with and in on at by for from
red green blue yellow purple orange pink black white gray brown gold silver colorful bright dark light
circle square triangle star heart shape large small big tiny left right top bottom center background
cat dog bird horse fish tree flower forest mountain river lake sea ocean sky cloud sun moon night day city
street house castle car boat man woman girl boy child face eyes hair smiling standing sitting walking
beautiful detailed high quality best masterpiece realistic cinematic lighting sharp focus style art
outlined striped trigger lora model stable diffusion render 4k 8k hdr soft warm cold vintage modern`;

function tinySpec(vocabSize: number): Sd1Spec {
  return {
    unet: { modelChannels: 32, channelMult: [1, 2, 2, 2], numResBlocks: 2, attention: [true, true, true, false], contextDim: 32 },
    vae: { baseChannels: 32, channelMult: [1, 1, 1, 1], numResBlocks: 1, latentChannels: 4 },
    clip: { width: 32, layers: 2, intermediate: 64, vocabSize, positions: 77 },
  };
}

/** Tokenizer folder beside a single-file checkpoint (the rule findTokenizer follows). */
export function tokenizerDirFor(checkpointPath: string): string {
  return checkpointPath.replace(/\.safetensors$/, '.tokenizer');
}

/** Writes the tiny random model (and its tokenizer) unless it is already there; returns its path. */
export function ensureTinyRandomModel(folders: ModelFolders): string {
  const path = join(folders.checkpoints, TINY_RANDOM_CHECKPOINT);
  const tokenizerDir = tokenizerDirFor(path);
  if (existsSync(path) && existsSync(tokenizerDir)) return path;
  mkdirSync(folders.checkpoints, { recursive: true });
  const trained = trainClipBpe(TINY_CORPUS.split('\n'), 1000);
  writeClipTokenizerFolder(tokenizerDir, trained.tokens, trained.merges);
  writeRandomSd1Checkpoint(path, tinySpec(trained.tokens.length), {
    seed: 20261128,
    metadata: { 'modelspec.title': 'LoraGraph tiny random SD1.x (tests)' },
  });
  return path;
}

interface DemoManifest {
  readonly model: { readonly file: string; readonly tokenizer: string };
  readonly loras: readonly { readonly file: string }[];
}

/** Copies the shipped demo model, tokenizer and LoRAs into the models folder (once); returns its path, if shipped. */
export function ensureDemoModel(folders: ModelFolders): string | undefined {
  const manifestPath = join(DEMO_ASSETS, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as DemoManifest;
  const path = join(folders.checkpoints, manifest.model.file);
  if (!existsSync(path) || !existsSync(tokenizerDirFor(path))) {
    mkdirSync(folders.checkpoints, { recursive: true });
    cpSync(join(DEMO_ASSETS, manifest.model.tokenizer), tokenizerDirFor(path), { recursive: true });
    copyWhole(join(DEMO_ASSETS, manifest.model.file), path);
  }
  mkdirSync(folders.loras, { recursive: true });
  for (const { file } of manifest.loras) {
    if (!existsSync(join(folders.loras, file))) copyWhole(join(DEMO_ASSETS, file), join(folders.loras, file));
  }
  return path;
}

/** Copies under a temporary name, then renames: an interrupted copy never looks like an installed model. */
function copyWhole(from: string, to: string): void {
  const partial = `${to}.partial-${process.pid}`;
  copyFileSync(from, partial);
  renameSync(partial, to);
}

/** The default checkpoint of a fresh install: the trained demo model when shipped, else the tiny random one. */
export function ensureDefaultModel(folders: ModelFolders): string {
  ensureTinyRandomModel(folders);
  return ensureDemoModel(folders) ?? join(folders.checkpoints, TINY_RANDOM_CHECKPOINT);
}

/** The SD1.5-shaped random checkpoint for benchmarks (about 2 GB in fp16; written once). */
export function ensureSd15ShapedModel(folders: ModelFolders): string {
  const path = join(folders.checkpoints, SD15_RANDOM_CHECKPOINT);
  if (existsSync(path)) return path;
  mkdirSync(folders.checkpoints, { recursive: true });
  writeRandomSd1Checkpoint(path, SD15_SPEC, { seed: 15, dtype: 'F16', metadata: { 'modelspec.title': 'SD1.5-shaped random weights (benchmarks)' } });
  return path;
}
