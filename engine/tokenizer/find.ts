/**
 * Where a checkpoint's tokenizer is looked for, in this order (the first folder holding vocab.json + merges.txt
 * or tokenizer.json wins):
 * 1. a diffusers folder's own `tokenizer/` (CLIP-L) or `tokenizer_2/` (SDXL's second encoder, CLIP-G);
 * 2. beside a single-file checkpoint `name.safetensors`, the folders `name.tokenizer/` (CLIP-L) and
 *    `name.tokenizer_2/` (CLIP-G): diffusers' sub-folder names prefixed with the checkpoint's name, so a user
 *    copies them from any diffusers repository of the same family;
 * 3. the shared folder `<tokenizersDir>/clip-l/` or `<tokenizersDir>/clip-g/`, which serves every checkpoint.
 */
import { statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { NotFoundError } from '../errors.ts';
import { TOKENIZER_FILES_HINT, tokenizerFormatIn } from './files.ts';

export type TokenizerKind = 'clip-l' | 'clip-g';

interface KindInfo {
  readonly name: string;
  readonly diffusersFolder: string;
  readonly whereToGet: string;
}

const KINDS: Readonly<Record<TokenizerKind, KindInfo>> = {
  'clip-l': {
    name: 'CLIP ViT-L/14',
    diffusersFolder: 'tokenizer',
    whereToGet: 'the tokenizer/ folder of any Stable Diffusion 1.x or SDXL diffusers repository, or openai/clip-vit-large-patch14',
  },
  'clip-g': {
    name: 'OpenCLIP ViT-bigG/14',
    diffusersFolder: 'tokenizer_2',
    whereToGet: 'the tokenizer_2/ folder of any SDXL diffusers repository',
  },
};

export interface FindTokenizerOptions {
  /** A diffusers folder or a single-file checkpoint; omitted, only the shared folder is searched. */
  readonly modelPath?: string;
  /** The configured tokenizers folder, usually `models/tokenizers`. */
  readonly tokenizersDir: string;
  readonly kind: TokenizerKind;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** The folders searched, in order. */
function tokenizerSearchPath({ modelPath, tokenizersDir, kind }: FindTokenizerOptions): string[] {
  const folders: string[] = [];
  const sub = KINDS[kind].diffusersFolder;
  if (modelPath !== undefined) {
    if (isDirectory(modelPath)) folders.push(join(modelPath, sub));
    else folders.push(join(dirname(modelPath), `${basename(modelPath, extname(modelPath))}.${sub}`));
  }
  folders.push(join(tokenizersDir, kind));
  return folders;
}

/** The folder holding the tokenizer of `kind` for a checkpoint; a NotFoundError saying where to put it if none. */
export function findTokenizer(options: FindTokenizerOptions): string {
  const folders = tokenizerSearchPath(options);
  const found = folders.find((folder) => tokenizerFormatIn(folder) !== undefined);
  if (found !== undefined) return found;
  const { name, whereToGet } = KINDS[options.kind];
  const shared = join(options.tokenizersDir, options.kind);
  throw new NotFoundError(
    `No ${name} tokenizer found (searched ${folders.map((f) => `${f}/`).join(', ')}). ` +
      `Put ${TOKENIZER_FILES_HINT} of the ${name} tokenizer in ${shared}/ (they are in ${whereToGet}).`,
  );
}
