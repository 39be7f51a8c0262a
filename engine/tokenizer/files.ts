/**
 * The on-disk forms of a CLIP tokenizer: `vocab.json` + `merges.txt` (as in CLIP and diffusers' `tokenizer/`
 * folders) and Hugging Face's `tokenizer.json`. Reading validates; writing produces the folder a transformers
 * `CLIPTokenizer` loads.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError, NotFoundError } from '../errors.ts';
import { isJsonObject } from '../json.ts';
import { END_OF_WORD, END_TOKEN, START_TOKEN } from './text.ts';
import type { Merge } from './bpe.ts';

export interface TokenizerData {
  readonly vocab: ReadonlyMap<string, number>;
  readonly merges: readonly Merge[];
}

export const TOKENIZER_FILES_HINT = 'vocab.json and merges.txt (or tokenizer.json)';

/** Which form a folder holds, preferring the plain CLIP files when both are present. */
export function tokenizerFormatIn(dir: string): 'vocab+merges' | 'tokenizer.json' | undefined {
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) return 'vocab+merges';
  if (existsSync(join(dir, 'tokenizer.json'))) return 'tokenizer.json';
  return undefined;
}

export function readTokenizerFolder(dir: string): TokenizerData {
  switch (tokenizerFormatIn(dir)) {
    case 'vocab+merges': {
      const vocabFile = join(dir, 'vocab.json');
      const mergesFile = join(dir, 'merges.txt');
      return {
        vocab: parseVocab(vocabFile, parseJson(vocabFile)),
        merges: parseMergesTxt(mergesFile, readFileSync(mergesFile, 'utf8')),
      };
    }
    case 'tokenizer.json':
      return parseTokenizerJson(join(dir, 'tokenizer.json'));
    case undefined:
      throw new NotFoundError(`No tokenizer in ${dir}: put ${TOKENIZER_FILES_HINT} of a CLIP tokenizer there`);
  }
}

function parseJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new FileFormatError(file, `is not valid JSON (${(error as Error).message})`);
  }
}

function parseVocab(file: string, value: unknown): Map<string, number> {
  if (!isJsonObject(value)) throw new FileFormatError(file, 'the vocabulary must be a JSON object of token → id');
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new FileFormatError(file, `token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, not a whole number ≥ 0`);
    }
    vocab.set(token, id as number);
  }
  return vocab;
}

function parseMerge(file: string, where: string, merge: unknown): Merge {
  const parts = typeof merge === 'string' ? merge.split(' ') : merge;
  const valid = Array.isArray(parts) && parts.length === 2 && parts.every((p) => typeof p === 'string' && p !== '');
  if (!valid) {
    throw new FileFormatError(file, `${where}: expected two symbols ("a b" or ["a", "b"]), got ${JSON.stringify(merge)}`);
  }
  return [parts[0], parts[1]];
}

function parseMergesTxt(file: string, text: string): Merge[] {
  const lines = text.split(/\r?\n/);
  const merges: Merge[] = [];
  lines.forEach((line, index) => {
    // Only the first line can be the version header: later lines starting with '#' are merges of '#'.
    if (line === '' || (index === 0 && line.startsWith('#version'))) return;
    merges.push(parseMerge(file, `line ${index + 1}`, line));
  });
  return merges;
}

function parseTokenizerJson(file: string): TokenizerData {
  const root = parseJson(file);
  const model = isJsonObject(root) ? root.model : undefined;
  if (!isJsonObject(model)) throw new FileFormatError(file, 'has no "model" object');
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new FileFormatError(file, `is a ${String(model.type)} tokenizer; CLIP text encoders need a BPE one`);
  }
  if (model.end_of_word_suffix !== undefined && model.end_of_word_suffix !== END_OF_WORD) {
    throw new FileFormatError(
      file,
      `has end_of_word_suffix ${JSON.stringify(model.end_of_word_suffix)}; a CLIP tokenizer marks word ends with "${END_OF_WORD}"`,
    );
  }
  const vocab = parseVocab(file, model.vocab);
  // Special tokens may live only in the added tokens list.
  const added = isJsonObject(root) && Array.isArray(root.added_tokens) ? root.added_tokens : [];
  for (const token of added) {
    if (isJsonObject(token) && typeof token.content === 'string' && Number.isInteger(token.id) && !vocab.has(token.content)) {
      vocab.set(token.content, token.id as number);
    }
  }
  if (!Array.isArray(model.merges)) throw new FileFormatError(file, 'has no "model.merges" list');
  const merges = model.merges.map((merge: unknown, index: number) => parseMerge(file, `merge ${index}`, merge));
  return { vocab, merges };
}

const specialToken = (content: string, normalized: boolean) => ({
  content,
  lstrip: false,
  normalized,
  rstrip: false,
  single_word: false,
});

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes `vocab.json`, `merges.txt`, `tokenizer_config.json` and `special_tokens_map.json` as CLIP's Hugging Face
 * folders have them. `tokens[i]` is the token with id i.
 */
export function writeClipTokenizerFolder(dir: string, tokens: readonly string[], merges: readonly Merge[]): void {
  mkdirSync(dir, { recursive: true });
  // Built by hand: JSON.stringify of an object would move integer-like keys ("0".."9") ahead of the id order.
  const entries = tokens.map((token, id) => `  ${JSON.stringify(token)}: ${id}`);
  writeFileSync(join(dir, 'vocab.json'), `{\n${entries.join(',\n')}\n}\n`);
  writeFileSync(join(dir, 'merges.txt'), ['#version: 0.2', ...merges.map(([l, r]) => `${l} ${r}`)].join('\n') + '\n');
  writeJson(join(dir, 'tokenizer_config.json'), {
    add_prefix_space: false,
    added_tokens_decoder: {
      [tokens.indexOf(START_TOKEN)]: { ...specialToken(START_TOKEN, true), special: true },
      [tokens.indexOf(END_TOKEN)]: { ...specialToken(END_TOKEN, false), special: true },
    },
    bos_token: START_TOKEN,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: END_TOKEN,
    errors: 'replace',
    model_max_length: 77,
    pad_token: END_TOKEN,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: END_TOKEN,
  });
  writeJson(join(dir, 'special_tokens_map.json'), {
    bos_token: specialToken(START_TOKEN, true),
    eos_token: specialToken(END_TOKEN, true),
    pad_token: END_TOKEN,
    unk_token: specialToken(END_TOKEN, true),
  });
}
