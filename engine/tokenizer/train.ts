/**
 * Builds a small CLIP-format byte-level BPE tokenizer from caption lines: classic BPE over the corpus words
 * (after CLIP's cleanup and pre-tokenisation), merging the most frequent adjacent pair each round.
 *
 * Determinism: ties in frequency go to the pair whose left symbol, then right symbol, sorts first in JavaScript
 * string order, and nothing else (input order, hashing) can influence a choice, so one corpus always gives the
 * same files. A pair whose merged string is already a token is never chosen: CLIP's vocabulary has exactly one
 * entry per merge, and a duplicate would leave two ids for one string.
 */
import { InvalidInputError } from '../errors.ts';
import { BYTE_ALPHABET } from './byte-level.ts';
import { mergePair, pairKey, wordSymbols, type Merge } from './bpe.ts';
import { cleanText, END_OF_WORD, END_TOKEN, isSpecialToken, preTokenize, START_TOKEN } from './text.ts';

export interface TrainedTokenizer {
  /** Every token; the index is its id. */
  readonly tokens: readonly string[];
  /** In rank order (the order they were learned). */
  readonly merges: readonly Merge[];
}

/** 256 byte characters, the same 256 with `</w>`, and the start and end tokens. */
export const MIN_VOCAB_SIZE = 2 * BYTE_ALPHABET.length + 2;

/** CLIP's vocabulary layout: byte characters, word-final byte characters, one token per merge, start, end. */
export function clipVocabTokens(merges: readonly Merge[]): string[] {
  return [
    ...BYTE_ALPHABET,
    ...BYTE_ALPHABET.map((char) => char + END_OF_WORD),
    ...merges.map(([left, right]) => left + right),
    START_TOKEN,
    END_TOKEN,
  ];
}

interface Candidate {
  readonly count: number;
  readonly left: string;
  readonly right: string;
}

function comesFirst(a: Candidate, b: Candidate): boolean {
  if (a.count !== b.count) return a.count > b.count;
  if (a.left !== b.left) return a.left < b.left;
  return a.right < b.right;
}

/**
 * Binary heap of pair candidates. Counts change as merges happen; rather than updating entries in place, a
 * fresh entry is pushed and stale ones are dropped when popped (their count no longer matches).
 */
class CandidateHeap {
  private readonly items: Candidate[] = [];

  push(item: Candidate): void {
    const items = this.items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!comesFirst(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      while (true) {
        const left = 2 * i + 1;
        const right = left + 1;
        let first = i;
        if (left < items.length && comesFirst(items[left], items[first])) first = left;
        if (right < items.length && comesFirst(items[right], items[first])) first = right;
        if (first === i) break;
        [items[i], items[first]] = [items[first], items[i]];
        i = first;
      }
    }
    return top;
  }
}

function countWords(lines: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    for (const piece of preTokenize(cleanText(line))) {
      if (!isSpecialToken(piece)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }
  return counts;
}

function adjacentPairs(symbols: readonly string[]): string[] {
  const keys: string[] = [];
  for (let i = 0; i + 1 < symbols.length; i++) keys.push(pairKey(symbols[i], symbols[i + 1]));
  return keys;
}

/**
 * Learns up to `vocabSize - MIN_VOCAB_SIZE` merges. Training stops early when every corpus word has become a
 * single token; the vocabulary is then smaller than asked (`tokens.length` says how large).
 */
export function trainClipBpe(lines: Iterable<string>, vocabSize: number): TrainedTokenizer {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new InvalidInputError(
      `vocabulary size ${vocabSize}: must be a whole number of at least ${MIN_VOCAB_SIZE} ` +
        '(256 byte tokens, the same 256 as word ends, and the start and end tokens)',
    );
  }
  const words = [...countWords(lines)].map(([piece, count]) => ({ symbols: wordSymbols(piece), count }));
  const pairCounts = new Map<string, number>();
  const wordsWithPair = new Map<string, Set<number>>();
  const heap = new CandidateHeap();
  const changes = new Map<string, number>();

  const recount = (word: number, before: readonly string[], after: readonly string[]) => {
    const { count } = words[word];
    for (const key of adjacentPairs(before)) changes.set(key, (changes.get(key) ?? 0) - count);
    for (const key of adjacentPairs(after)) {
      changes.set(key, (changes.get(key) ?? 0) + count);
      let holders = wordsWithPair.get(key);
      if (!holders) wordsWithPair.set(key, (holders = new Set()));
      holders.add(word);
    }
  };
  const applyChanges = () => {
    for (const [key, change] of changes) {
      if (change === 0) continue;
      const count = (pairCounts.get(key) ?? 0) + change;
      if (count > 0) {
        pairCounts.set(key, count);
        const [left, right] = key.split(' ');
        heap.push({ count, left, right });
      } else {
        pairCounts.delete(key);
      }
    }
    changes.clear();
  };

  words.forEach((word, index) => recount(index, [], word.symbols));
  applyChanges();

  const known = new Set(clipVocabTokens([]));
  const merges: Merge[] = [];
  const wanted = vocabSize - MIN_VOCAB_SIZE;
  while (merges.length < wanted) {
    const best = heap.pop();
    if (!best) break;
    const key = pairKey(best.left, best.right);
    if (pairCounts.get(key) !== best.count) continue;
    const merged = best.left + best.right;
    if (known.has(merged)) continue;
    known.add(merged);
    merges.push([best.left, best.right]);
    for (const index of wordsWithPair.get(key) ?? []) {
      const before = words[index].symbols;
      const after = mergePair(before, best.left, best.right);
      if (after.length === before.length) continue;
      recount(index, before, after);
      words[index].symbols = after;
    }
    wordsWithPair.delete(key);
    applyChanges();
  }
  return { tokens: clipVocabTokens(merges), merges };
}
