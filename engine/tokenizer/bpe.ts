/** The pieces of byte-pair encoding that training and encoding share. */
import { byteLevelChars } from './byte-level.ts';
import { END_OF_WORD } from './text.ts';

/** A learned merge: two adjacent symbols that become one. */
export type Merge = readonly [left: string, right: string];

/** The starting symbols of one pre-token: its byte characters, the last one marked as word-final. */
export function wordSymbols(piece: string): string[] {
  const symbols = byteLevelChars(piece);
  symbols[symbols.length - 1] += END_OF_WORD;
  return symbols;
}

/** A map key for a symbol pair. Byte-level symbols never contain a space, so the join is unambiguous. */
export function pairKey(left: string, right: string): string {
  return `${left} ${right}`;
}

/** Replaces every occurrence of `left right` with the merged symbol, scanning left to right without overlaps. */
export function mergePair(symbols: readonly string[], left: string, right: string): string[] {
  const merged: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === left && i + 1 < symbols.length && symbols[i + 1] === right) {
      merged.push(left + right);
      i++;
    } else {
      merged.push(symbols[i]);
    }
  }
  return merged;
}
