/**
 * Prompt emphasis with AUTOMATIC1111's semantics (the syntax ComfyUI users write too):
 *
 *   (text)       weight × 1.1           [text]        weight ÷ 1.1
 *   (text:1.3)   weight × 1.3           nesting multiplies: ((text)) = 1.21, ((text:2)) = 2.2
 *   \( \) \[ \] \\   the literal character; any other backslash is dropped
 *   BREAK        (upper case, a word on its own) ends the current 77-token chunk
 *
 * Unbalanced brackets as in A1111: a `(` or `[` left open weights everything after it; a stray `)` or `]`, and a
 * `:1.3)` with no `(` open, stay in the text. Neighbouring pieces of equal weight are joined, so `(a)(b)` is one
 * piece `ab`. One deliberate difference: a BREAK inside brackets still ends the chunk (A1111 would instead
 * tokenise the word "break", because it marks BREAK with a weight that the brackets then multiply).
 */
import { InvalidInputError } from '../errors.ts';

export type PromptPart =
  | { readonly kind: 'text'; readonly text: string; readonly weight: number }
  | { readonly kind: 'break' };

const ROUND_MULTIPLIER = 1.1;
const SQUARE_MULTIPLIER = 1 / 1.1;

/** Escapes, a lone backslash, brackets, an explicit `:weight)` close, a run of plain text, a lone colon. */
const SYNTAX = /\\[()[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/gu;
/** BREAK as a whole word (Python's `\b` counts letters, digits and `_` as word characters), with its spaces. */
const BREAK = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/u;

interface Piece {
  readonly text: string;
  weight: number;
  readonly isBreak: boolean;
}

export function parseEmphasis(prompt: string): PromptPart[] {
  const pieces: Piece[] = [];
  const openRound: number[] = [];
  const openSquare: number[] = [];
  const multiplyFrom = (start: number, multiplier: number) => {
    for (let i = start; i < pieces.length; i++) pieces[i].weight *= multiplier;
  };
  const addText = (text: string) => pieces.push({ text, weight: 1, isBreak: false });

  for (const match of prompt.matchAll(SYNTAX)) {
    const [token, weight] = match;
    if (token.startsWith('\\')) addText(token.slice(1));
    else if (token === '(') openRound.push(pieces.length);
    else if (token === '[') openSquare.push(pieces.length);
    else if (weight !== undefined && openRound.length > 0) multiplyFrom(openRound.pop()!, parseWeight(weight, token));
    else if (token === ')' && openRound.length > 0) multiplyFrom(openRound.pop()!, ROUND_MULTIPLIER);
    else if (token === ']' && openSquare.length > 0) multiplyFrom(openSquare.pop()!, SQUARE_MULTIPLIER);
    else {
      token.split(BREAK).forEach((text, i) => {
        if (i > 0) pieces.push({ text: '', weight: 1, isBreak: true });
        addText(text);
      });
    }
  }
  for (const start of openRound) multiplyFrom(start, ROUND_MULTIPLIER);
  for (const start of openSquare) multiplyFrom(start, SQUARE_MULTIPLIER);

  const parts: PromptPart[] = [];
  for (const piece of pieces) {
    const last = parts.at(-1);
    if (piece.isBreak) parts.push({ kind: 'break' });
    else if (last?.kind === 'text' && last.weight === piece.weight) parts[parts.length - 1] = { ...last, text: last.text + piece.text };
    else parts.push({ kind: 'text', text: piece.text, weight: piece.weight });
  }
  return parts.length > 0 ? parts : [{ kind: 'text', text: '', weight: 1 }];
}

function parseWeight(weight: string, token: string): number {
  const value = Number(weight);
  if (Number.isNaN(value)) throw new InvalidInputError(`prompt emphasis "${token}": "${weight}" is not a number`);
  return value;
}
