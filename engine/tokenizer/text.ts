/** CLIP's text normalisation and pre-tokenisation, shared by the tokenizer and the tokenizer generator. */

export const START_TOKEN = '<|startoftext|>';
export const END_TOKEN = '<|endoftext|>';
/** Appended to the last symbol of every word: CLIP's BPE tells word-final pieces from inner ones. */
export const END_OF_WORD = '</w>';

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
};

const ENTITY = /&(?:#(\d+)|#[xX]([0-9a-fA-F]+)|([a-zA-Z]+));/g;

function codePointOrReplacement(code: number): string {
  const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
  return valid ? String.fromCodePoint(code) : '\ufffd';
}

/** The common HTML entities (numeric ones and the few named ones captions carry); unknown names stay as typed. */
function unescapeHtml(text: string): string {
  return text.replace(ENTITY, (whole, decimal?: string, hex?: string, name?: string) => {
    if (decimal !== undefined) return codePointOrReplacement(Number.parseInt(decimal, 10));
    if (hex !== undefined) return codePointOrReplacement(Number.parseInt(hex, 16));
    return Object.hasOwn(NAMED_ENTITIES, name!) ? NAMED_ENTITIES[name!] : whole;
  });
}

/**
 * CLIP's cleanup: Unicode NFC (the part of ftfy that matters for prompts), HTML unescaping applied twice as
 * CLIP does (captions scraped from the web are often escaped twice), whitespace runs collapsed to one space,
 * ends trimmed, lower-cased.
 */
export function cleanText(text: string): string {
  const unescaped = unescapeHtml(unescapeHtml(text.normalize('NFC')));
  return unescaped.replace(/\s+/gu, ' ').trim().toLowerCase();
}

/**
 * CLIP's pre-tokenisation: the special tokens, the English contractions, runs of letters, single digits, runs of
 * other non-space characters. BPE never merges across these pieces. Expects cleaned (lower-case) text.
 */
const PRE_TOKEN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/gu;

export function preTokenize(cleaned: string): string[] {
  return cleaned.match(PRE_TOKEN) ?? [];
}

export function isSpecialToken(piece: string): boolean {
  return piece === START_TOKEN || piece === END_TOKEN;
}
