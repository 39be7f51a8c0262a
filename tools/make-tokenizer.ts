/**
 * Builds a small CLIP-format tokenizer folder from a caption corpus (one caption per line):
 *
 *   npx tsx tools/make-tokenizer.ts --corpus captions.txt --vocab-size 2048 --out models/tokenizers/demo
 *
 * Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json. The same corpus and size
 * always give byte-identical files.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LoraGraphError } from '../engine/errors.ts';
import { trainClipBpe, writeClipTokenizerFolder } from '../engine/tokenizer/index.ts';

const USAGE = 'usage: npx tsx tools/make-tokenizer.ts --corpus FILE --vocab-size N --out DIR';

class UsageError extends Error {}

function main(): void {
  const { values } = parseArgs({
    options: { corpus: { type: 'string' }, 'vocab-size': { type: 'string' }, out: { type: 'string' } },
  });
  const { corpus, out, 'vocab-size': size } = values;
  if (!corpus || !out || !size) throw new UsageError(USAGE);
  if (!/^\d+$/.test(size)) throw new UsageError(`--vocab-size must be a whole number, got "${size}"`);
  const vocabSize = Number(size);
  const { tokens, merges } = trainClipBpe(readFileSync(corpus, 'utf8').split(/\r?\n/), vocabSize);
  writeClipTokenizerFolder(out, tokens, merges);
  console.log(`${out}: ${tokens.length} tokens (${merges.length} merges)`);
  if (tokens.length < vocabSize) {
    console.log(`every corpus word became a single token before reaching ${vocabSize} tokens: the vocabulary is smaller`);
  }
}

try {
  main();
} catch (error) {
  // User mistakes (bad flags, a missing corpus, a too-small size) get their message; anything else its stack.
  const fromUser = error instanceof LoraGraphError || error instanceof UsageError || (error as NodeJS.ErrnoException).code !== undefined;
  console.error(fromUser ? (error as Error).message : error);
  process.exit(1);
}
