/** The PNG chunk layer: walking chunks of untrusted bytes safely, and building chunks with their CRC. */
import { crc32 } from 'node:zlib';
import { FileFormatError } from '../errors.ts';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The PNG spec caps chunk lengths at 2^31 - 1. */
const MAX_CHUNK_LENGTH = 0x7fffffff;
/** Length, type and CRC around each chunk's data. */
const CHUNK_OVERHEAD = 12;

export interface PngChunk {
  readonly type: string;
  /** A view into the input, never a copy: a hostile length field cannot make us allocate. */
  readonly data: Uint8Array;
  readonly offset: number;
  /** True when the stored CRC matches the type and data. Computed on demand (callers check only what they read). */
  crcMatches(): boolean;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

function isChunkType(bytes: Uint8Array): boolean {
  return bytes.every((b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
}

/**
 * Every chunk from IHDR to IEND (later bytes are ignored). Throws FileFormatError naming `source` when the
 * signature is wrong, the first chunk is not IHDR, a type is not four letters, or a length runs past the end.
 * A file that stops cleanly between chunks without IEND is accepted: the chunks read so far are intact.
 */
export function* walkPngChunks(bytes: Uint8Array, source: string): Generator<PngChunk> {
  if (!isPng(bytes)) throw new FileFormatError(source, 'not a PNG file (the PNG signature is missing)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = PNG_SIGNATURE.length;
  let first = true;
  while (offset < bytes.length) {
    const corrupt = (problem: string) =>
      new FileFormatError(source, `corrupt PNG: ${problem} at byte ${offset}; the file is damaged or truncated`);
    if (bytes.length - offset < CHUNK_OVERHEAD) throw corrupt('a chunk header is cut off');
    const length = view.getUint32(offset);
    const typeBytes = bytes.subarray(offset + 4, offset + 8);
    if (!isChunkType(typeBytes)) throw corrupt('a chunk type is not four letters');
    const type = Buffer.from(typeBytes).toString('latin1');
    if (first && type !== 'IHDR') throw corrupt(`the first chunk is ${type}, not IHDR`);
    if (length > MAX_CHUNK_LENGTH || length > bytes.length - offset - CHUNK_OVERHEAD) {
      throw corrupt(`chunk ${type} claims ${length} bytes but only ${bytes.length - offset - CHUNK_OVERHEAD} remain`);
    }
    const typeAndData = bytes.subarray(offset + 4, offset + 8 + length);
    const storedCrc = view.getUint32(offset + 8 + length);
    yield {
      type,
      data: bytes.subarray(offset + 8, offset + 8 + length),
      offset,
      crcMatches: () => crc32(typeAndData) === storedCrc,
    };
    if (type === 'IEND') return;
    offset += CHUNK_OVERHEAD + length;
    first = false;
  }
}

/** One serialised chunk: length, type, data, CRC-32 of type and data. */
export function buildChunk(type: string, data: Uint8Array): Buffer {
  const chunk = Buffer.alloc(CHUNK_OVERHEAD + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  chunk.set(data, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}
