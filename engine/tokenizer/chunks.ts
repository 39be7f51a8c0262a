/**
 * A weighted prompt as CLIP's 77-token chunks: each chunk is the start token, up to 75 prompt tokens, the end
 * token and padding; every token carries its emphasis weight (1 for start, end and padding). Long prompts give
 * several chunks, an empty prompt one.
 *
 * Word boundaries (ComfyUI's rule): a word (a whitespace-separated run, including its punctuation) that does not
 * fit in what is left of a chunk moves whole to the next one, unless it has 8 or more tokens: such a word fills
 * the chunk and continues in the next, since moving it would waste most of a chunk. BREAK ends the current chunk
 * even when it is empty (as in A1111); a chunk left empty at the very end is dropped unless it is the only one.
 */
import type { ClipTokenizer } from './clip-tokenizer.ts';
import { parseEmphasis } from './emphasis.ts';
import type { TokenizerKind } from './find.ts';

export const CHUNK_LENGTH = 77;
/** Prompt tokens per chunk, between the start and end tokens. */
export const CHUNK_CONTENT = CHUNK_LENGTH - 2;
/** Words at least this many tokens long may be split across chunks. */
export const LONG_WORD_TOKENS = 8;

export interface TokenChunk {
  /** CHUNK_LENGTH token ids. */
  readonly ids: number[];
  /** CHUNK_LENGTH emphasis weights. */
  readonly weights: number[];
}

export interface TokenizedPrompt {
  readonly chunks: TokenChunk[];
}

export interface ChunkOptions {
  /** The id filling a chunk after its end token; default the end token itself (see `padIdFor`). */
  readonly padId?: number;
}

/**
 * SD1's CLIP-L pads with its end token (ComfyUI's pad_with_end); SDXL's second encoder, OpenCLIP-G, pads with
 * id 0 after its end token, as it was trained.
 */
export function padIdFor(kind: TokenizerKind, tokenizer: ClipTokenizer): number {
  return kind === 'clip-g' ? 0 : tokenizer.endId;
}

export function tokenizePrompt(tokenizer: ClipTokenizer, prompt: string, options: ChunkOptions = {}): TokenizedPrompt {
  const padId = options.padId ?? tokenizer.endId;
  const chunks: TokenChunk[] = [];
  let ids: number[] = [];
  let weights: number[] = [];

  const closeChunk = () => {
    const padding = CHUNK_CONTENT - ids.length;
    chunks.push({
      ids: [tokenizer.startId, ...ids, tokenizer.endId, ...new Array<number>(padding).fill(padId)],
      weights: [1, ...weights, 1, ...new Array<number>(padding).fill(1)],
    });
    ids = [];
    weights = [];
  };
  const add = (tokens: readonly number[], weight: number) => {
    ids.push(...tokens);
    for (let i = 0; i < tokens.length; i++) weights.push(weight);
  };

  for (const part of parseEmphasis(prompt)) {
    if (part.kind === 'break') {
      closeChunk();
      continue;
    }
    for (let word of tokenizer.encodeWords(part.text)) {
      if (ids.length + word.length > CHUNK_CONTENT && word.length < LONG_WORD_TOKENS) closeChunk();
      while (ids.length + word.length > CHUNK_CONTENT) {
        const room = CHUNK_CONTENT - ids.length;
        add(word.slice(0, room), part.weight);
        word = word.slice(room);
        closeChunk();
      }
      add(word, part.weight);
    }
  }
  if (ids.length > 0 || chunks.length === 0) closeChunk();
  return { chunks };
}
