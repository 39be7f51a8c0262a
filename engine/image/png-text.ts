/**
 * PNG text chunks: building tEXt/iTXt and reading tEXt, zTXt and iTXt back.
 *
 * Writing: ASCII values go in tEXt; anything else in uncompressed iTXt (UTF-8). PIL would use tEXt for
 * Latin-1 values too, but ComfyUI's frontend and libvips (sharp) decode tEXt as UTF-8, so Latin-1 bytes
 * would reach them as U+FFFD; iTXt reads correctly everywhere.
 *
 * Reading: a text chunk whose CRC does not match is a FileFormatError, not a skipped chunk: a damaged
 * `prompt` or `parameters` would otherwise load a silently different workflow. Other chunks' CRCs are not
 * checked here (the pixel decoder checks the ones it uses). Inflated text is capped so a small hostile file
 * cannot expand into gigabytes.
 */
import { inflateSync } from 'node:zlib';
import { FileFormatError, InvalidInputError } from '../errors.ts';
import { buildChunk, walkPngChunks, type PngChunk } from './png-chunks.ts';

/** Total decompressed text per file; ComfyUI workflows are at most a few MB. */
export const MAX_INFLATED_TEXT_BYTES = 64 * 1024 * 1024;

/** The spec's keyword: 1 to 79 printable Latin-1 characters. */
const KEYWORD = /^[\x20-\x7e\xa1-\xff]{1,79}$/;
const NON_ASCII = /[\u0080-\uffff]/;

/** The tEXt or iTXt chunk that stores `value` under `keyword`. */
export function buildTextChunk(keyword: string, value: string): Buffer {
  if (!KEYWORD.test(keyword)) {
    throw new InvalidInputError(
      `PNG text key ${JSON.stringify(keyword)} is not valid: use 1 to 79 printable Latin-1 characters`,
    );
  }
  const key = Buffer.from(keyword, 'latin1');
  if (!NON_ASCII.test(value)) return buildChunk('tEXt', Buffer.concat([key, Buffer.of(0), Buffer.from(value, 'latin1')]));
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, text.
  return buildChunk('iTXt', Buffer.concat([key, Buffer.of(0, 0, 0, 0, 0), Buffer.from(value, 'utf8')]));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes text chunks of one file, enforcing the inflate budget across all of them. */
class TextChunkReader {
  private inflateBudget = MAX_INFLATED_TEXT_BYTES;

  constructor(private readonly source: string) {}

  read(chunk: PngChunk): [string, string] {
    if (!chunk.crcMatches()) throw this.error(chunk, 'its CRC does not match (the text is damaged)');
    const data = asBuffer(chunk.data);
    const keyEnd = data.indexOf(0);
    if (keyEnd < 0) throw this.error(chunk, 'it has no NUL after its keyword');
    const keyword = data.toString('latin1', 0, keyEnd);
    const rest = data.subarray(keyEnd + 1);
    if (chunk.type === 'tEXt') return [keyword, rest.toString('latin1')];
    if (chunk.type === 'zTXt') return [keyword, this.inflate(chunk, rest[0], rest.subarray(1)).toString('latin1')];
    // iTXt: compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text.
    const languageEnd = rest.indexOf(0, 2);
    const translatedEnd = languageEnd < 0 ? -1 : rest.indexOf(0, languageEnd + 1);
    if (translatedEnd < 0) throw this.error(chunk, 'its iTXt header is incomplete');
    const text = rest.subarray(translatedEnd + 1);
    return [keyword, (rest[0] === 0 ? text : this.inflate(chunk, rest[1], text)).toString('utf8')];
  }

  private inflate(chunk: PngChunk, method: number | undefined, compressed: Buffer): Buffer {
    if (method !== 0) throw this.error(chunk, `its compression method ${method} is unknown`);
    let inflated: Buffer;
    try {
      inflated = inflateSync(compressed, { maxOutputLength: Math.max(1, this.inflateBudget) });
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw this.error(
        chunk,
        tooLarge ? `its text inflates past the ${MAX_INFLATED_TEXT_BYTES >> 20} MiB limit` : 'its compressed text is corrupt',
      );
    }
    this.inflateBudget -= inflated.length;
    if (this.inflateBudget < 0) throw this.error(chunk, `its text inflates past the ${MAX_INFLATED_TEXT_BYTES >> 20} MiB limit`);
    return inflated;
  }

  private error(chunk: PngChunk, problem: string): FileFormatError {
    return new FileFormatError(this.source, `PNG ${chunk.type} chunk at byte ${chunk.offset} is unreadable: ${problem}`);
  }
}

const TEXT_CHUNK_TYPES = new Set(['tEXt', 'zTXt', 'iTXt']);

/**
 * All text chunks of a PNG (before or after IDAT) as keyword → text; a repeated keyword keeps its last value,
 * as PIL and ComfyUI's frontend do. `source` names the file in errors.
 */
export function readPngText(bytes: Uint8Array, source = 'PNG data'): Record<string, string> {
  const reader = new TextChunkReader(source);
  // Through a Map: a keyword such as "__proto__" must become a plain property, not a prototype.
  const text = new Map<string, string>();
  for (const chunk of walkPngChunks(bytes, source)) {
    if (TEXT_CHUNK_TYPES.has(chunk.type)) text.set(...reader.read(chunk));
  }
  return Object.fromEntries(text);
}
