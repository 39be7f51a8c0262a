/** CLIP's byte-level BPE tokenizer: text → token ids, as OpenAI's CLIP and transformers' CLIPTokenizer encode. */
import { FileFormatError } from '../errors.ts';
import { mergePair, pairKey, wordSymbols, type Merge } from './bpe.ts';
import { readTokenizerFolder } from './files.ts';
import { cleanText, END_TOKEN, isSpecialToken, preTokenize, START_TOKEN } from './text.ts';

/** Distinct words seen before the cache is emptied: plenty for prompts, bounded for a long-running server. */
const CACHE_LIMIT = 50_000;

export class ClipTokenizer {
  /** `<|startoftext|>`: begins every 77-token chunk. */
  readonly startId: number;
  /** `<|endoftext|>`: ends every chunk; also stands in for symbols the vocabulary lacks, as in CLIP. */
  readonly endId: number;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  /** `source` names the files in error messages. */
  constructor(vocab: ReadonlyMap<string, number>, merges: readonly Merge[], source = 'tokenizer') {
    const startId = vocab.get(START_TOKEN);
    const endId = vocab.get(END_TOKEN);
    if (startId === undefined || endId === undefined) {
      throw new FileFormatError(source, `the vocabulary lacks ${START_TOKEN} or ${END_TOKEN}: it is not a CLIP tokenizer`);
    }
    this.vocab = vocab;
    this.startId = startId;
    this.endId = endId;
    // A merge listed twice keeps its last rank, as CLIP's dict of merges does.
    merges.forEach(([left, right], rank) => this.ranks.set(pairKey(left, right), rank));
  }

  /** Loads `vocab.json` + `merges.txt` or `tokenizer.json` from a folder (see `findTokenizer` to locate one). */
  static fromFolder(dir: string): ClipTokenizer {
    const { vocab, merges } = readTokenizerFolder(dir);
    return new ClipTokenizer(vocab, merges, dir);
  }

  /** Token ids of `text`, without start and end tokens. */
  encode(text: string): number[] {
    return this.encodeWords(text).flat();
  }

  /**
   * Token ids per whitespace-separated word of the cleaned text. CLIP never merges across whitespace, so the
   * concatenation equals `encode(text)`; the grouping lets chunking keep a word's tokens together.
   */
  encodeWords(text: string): number[][] {
    const cleaned = cleanText(text);
    if (cleaned === '') return [];
    return cleaned.split(' ').map((word) => preTokenize(word).flatMap((piece) => this.encodePiece(piece)));
  }

  private encodePiece(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const symbols = isSpecialToken(piece) ? [piece] : this.bpe(wordSymbols(piece));
    const ids = symbols.map((symbol) => this.vocab.get(symbol) ?? this.endId);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(piece, ids);
    return ids;
  }

  /** Repeatedly merges the adjacent pair with the lowest rank until no ranked pair is left. */
  private bpe(start: string[]): string[] {
    let symbols = start;
    while (symbols.length > 1) {
      let best: Merge | undefined;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(pairKey(symbols[i], symbols[i + 1]));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = [symbols[i], symbols[i + 1]];
        }
      }
      if (!best) break;
      symbols = mergePair(symbols, best[0], best[1]);
    }
    return symbols;
  }
}
