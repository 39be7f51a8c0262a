/**
 * What node implementations may use besides their inputs: the configured folders, the shared model cache and
 * the settings. File names that arrive from users are resolved inside their folder; escapes are refused.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { InvalidInputError, NotFoundError } from '../engine/errors.ts';
import { listLoras } from '../engine/lora/index.ts';
import type { ModelFolders } from '../engine/models/embedded.ts';
import type { ModelCache } from '../engine/runtime/model-cache.ts';
import type { EmphasisMode } from '../engine/tokenizer/index.ts';

export type LoraApplyMethod = 'fuse' | 'backup' | 'dynamic';

export interface Folders {
  readonly models: ModelFolders;
  readonly input: string;
  readonly output: string;
  readonly temp: string;
}

export interface NodeSettings {
  readonly loraApplyMethod: LoraApplyMethod;
  /** Send a latent preview every N sampler steps (0 = never). */
  readonly previewEvery: number;
  /** Prompt emphasis: ComfyUI's (default) or A1111's original weighting. */
  readonly emphasis: EmphasisMode;
}

export interface NodeEnv {
  readonly folders: Folders;
  readonly models: ModelCache;
  readonly settings: NodeSettings;
}

export type FolderName = 'checkpoints' | 'loras' | 'input' | 'output' | 'temp';
export type ImageFolder = 'input' | 'output' | 'temp';

/** ComfyUI's annotated image names, "x.png [output]": the suffix picks the folder, else it is `fallback`. */
export function splitAnnotation<T extends string>(name: string, fallback: T): { file: string; folder: ImageFolder | T } {
  const m = /^(.*) \[(input|output|temp)\]$/.exec(name);
  return m ? { file: m[1], folder: m[2] as ImageFolder } : { file: name, folder: fallback };
}

export function folderPath(env: NodeEnv, folder: FolderName): string {
  if (folder === 'checkpoints' || folder === 'loras') return env.folders.models[folder];
  return env.folders[folder];
}

const EXTENSIONS: Record<Exclude<FolderName, 'loras'>, readonly string[]> = {
  checkpoints: ['.safetensors'],
  input: ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff'],
  output: ['.png', '.jpg', '.jpeg', '.webp'],
  temp: ['.png', '.jpg', '.jpeg', '.webp'],
};

/**
 * Files of a folder (recursive, skipping hidden folders except in `loras`; `/`-separated relative paths,
 * sorted): combo options.
 */
export function listFiles(env: NodeEnv, folder: FolderName): string[] {
  const root = folderPath(env, folder);
  if (!existsSync(root)) return [];
  // LoRAs are listed as the loaders resolve them (hidden folders included), so combos, /api/loras and
  // /api/models/loras offer the same names.
  if (folder === 'loras') return listLoras(root);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('.')) walk(full);
      }
      else if (EXTENSIONS[folder].includes(extname(entry.name).toLowerCase())) out.push(relative(root, full).split(sep).join('/'));
    }
  };
  walk(root);
  return out.sort((a, b) => a.localeCompare(b));
}

/** True when the absolute `path` is `root` or below it, by its name alone (`realPathInside` follows links). */
export function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root + sep);
}

/** True when the existing `path`, symlinks followed, is still inside `root`: a link may lead out of the folder. */
export function realPathInside(path: string, root: string): boolean {
  return isInside(realpathSync(path), realpathSync(root));
}

/**
 * The path of a user-supplied file name inside `folder`. Absolute paths, `..` and symlinks that lead outside
 * the folder are refused.
 */
export function resolveInFolder(env: NodeEnv, folder: FolderName, name: string): string {
  const root = resolve(folderPath(env, folder));
  if (!name || isAbsolute(name) || name.includes('\0')) throw new InvalidInputError(`"${name}" is not a file name inside the ${folder} folder`);
  const path = resolve(root, name);
  if (!isInside(path, root)) throw new InvalidInputError(`"${name}" points outside the ${folder} folder`);
  if (!existsSync(path)) throw new NotFoundError(`${folder}/${name} does not exist (folder: ${root})`);
  if (!realPathInside(path, root)) throw new InvalidInputError(`"${name}" links outside the ${folder} folder`);
  if (!statSync(path).isFile()) throw new InvalidInputError(`${folder}/${name} is not a file`);
  return path;
}
