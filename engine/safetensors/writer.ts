import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { DTYPE_BYTES, type DType } from '../tensor/dtype.ts';
import { numel } from './reader.ts';

/** One tensor to write. `data` may be a function so large files are produced one tensor at a time. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Uint8Array | (() => Uint8Array);
}

/** Builds the header bytes (8-byte length + JSON padded with spaces to a multiple of 8, as safetensors does). */
function encodeHeader(entries: readonly TensorEntry[], metadata: Readonly<Record<string, string>> | undefined): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    const bytes = numel(e.shape) * DTYPE_BYTES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

/**
 * Writes a safetensors file. Data is written tensor by tensor to a temporary file that replaces `path` only
 * when complete, so a failure never leaves a half-written model behind.
 */
export function writeSafetensors(
  path: string,
  entries: readonly TensorEntry[],
  metadata?: Readonly<Record<string, string>>,
): void {
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) throw new Error(`duplicate tensor name "${e.name}"`);
    if (e.name === '__metadata__') throw new Error('"__metadata__" is reserved');
    names.add(e.name);
  }
  const tmp = `${path}.partial-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeFully(fd, encodeHeader(entries, metadata));
    for (const e of entries) {
      const data = typeof e.data === 'function' ? e.data() : e.data;
      const expected = numel(e.shape) * DTYPE_BYTES[e.dtype];
      if (data.byteLength !== expected) {
        throw new Error(`tensor "${e.name}": ${data.byteLength} bytes given, ${e.dtype} × [${e.shape.join(', ')}] needs ${expected}`);
      }
      writeFully(fd, data);
    }
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Writes all of `bytes` (one write() call may write less), at `position` or the current file offset. */
export function writeFully(fd: number, bytes: Uint8Array, position?: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += writeSync(fd, bytes, done, bytes.byteLength - done, position === undefined ? null : position + done);
  }
}

/** Convenience for float32 data: the entry's bytes are a view of the array. */
export function f32Entry(name: string, shape: readonly number[], values: Float32Array): TensorEntry {
  return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}
