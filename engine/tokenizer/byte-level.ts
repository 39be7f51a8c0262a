/**
 * GPT-2's reversible byte-to-character table, which CLIP's BPE works on. Printable Latin-1 bytes stand for
 * themselves; the other 68 bytes (controls, space, soft hyphen...) get characters from U+0100 on, so a token
 * never holds whitespace and every byte sequence has a spelling.
 */

function isPrintable(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildAlphabet(): { order: number[]; charOf: string[] } {
  const order: number[] = [];
  const charOf: string[] = new Array(256);
  for (let byte = 0; byte < 256; byte++) {
    if (isPrintable(byte)) {
      order.push(byte);
      charOf[byte] = String.fromCharCode(byte);
    }
  }
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    if (!isPrintable(byte)) {
      order.push(byte);
      charOf[byte] = String.fromCharCode(next++);
    }
  }
  return { order, charOf };
}

const { order, charOf } = buildAlphabet();

/** The 256 byte characters in the order CLIP's vocabulary lists them (printable bytes first, then the rest). */
export const BYTE_ALPHABET: readonly string[] = order.map((byte) => charOf[byte]);

const encoder = new TextEncoder();

/** The UTF-8 bytes of `text`, each spelled as its byte-level character. */
export function byteLevelChars(text: string): string[] {
  return Array.from(encoder.encode(text), (byte) => charOf[byte]);
}
