import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FileFormatError } from '../errors.ts';
import { DTYPE_BYTES, isDType, toFloat32, type DType } from '../tensor/dtype.ts';

/** Where one tensor lives in a safetensors file. `offset` is absolute (from the start of the file). */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly byteLength: number;
}

/** The safetensors reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const PICKLE_HINT =
  'it is a PyTorch pickle (.ckpt/.pt/.bin). Pickles can run arbitrary code when loaded, so LoraGraph only ' +
  'reads .safetensors; convert it once with a trusted tool (e.g. `python -m safetensors.torch` or ' +
  "A1111/ComfyUI's model converters) and load the .safetensors file";

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A safetensors file opened for lazy reading: the header is parsed and validated up front, tensor bytes are
 * read on demand by name. Nothing is loaded whole.
 */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Size in bytes of the 8-byte length prefix plus the JSON header: tensor data starts here. */
  readonly dataStart: number;
  readonly fileSize: number;
  /** Device and inode of the opened file: tells whether the path still names this file. */
  readonly identity: { readonly dev: number; readonly ino: number };
  private readonly tensors: Map<string, TensorInfo>;
  private fd: number | undefined;

  private constructor(
    path: string,
    fd: number,
    fileSize: number,
    dataStart: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fd = fd;
    const stat = fstatSync(fd);
    this.identity = { dev: stat.dev, ino: stat.ino };
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FileFormatError(path, code === 'ENOENT' ? 'file not found' : `cannot open (${code})`, 'not_found');
    }
    try {
      const fileSize = fstatSync(fd).size;
      const { tensors, metadata, dataStart } = parseHeader(path, fd, fileSize);
      return new SafetensorsFile(path, fd, fileSize, dataStart, tensors, metadata);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new FileFormatError(this.path, `has no tensor named "${name}"`, 'not_found');
    return info;
  }

  infos(): TensorInfo[] {
    return [...this.tensors.values()];
  }

  /** Raw little-endian bytes of a tensor (or of a byte range inside it). */
  readBytes(name: string, start = 0, length?: number): Uint8Array {
    const info = this.info(name);
    const len = length ?? info.byteLength - start;
    if (start < 0 || len < 0 || start + len > info.byteLength) {
      throw new RangeError(`byte range ${start}+${len} outside tensor ${name} (${info.byteLength} bytes)`);
    }
    return this.readAt(info.offset + start, len);
  }

  /** Reads `length` bytes at an absolute file offset into a fresh buffer. */
  readAt(offset: number, length: number): Uint8Array {
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) throw new FileFormatError(this.path, `unexpected end of file at byte ${offset + done}`, 'truncated');
      done += n;
    }
    return out;
  }

  /** A tensor converted to float32 (any float or integer dtype). */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    return toFloat32(this.readBytes(name), info.dtype);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function parseHeader(
  path: string,
  fd: number,
  fileSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string>; dataStart: number } {
  const fail = (problem: string, code = 'bad_safetensors'): never => {
    throw new FileFormatError(path, problem, code);
  };
  if (fileSize < 8) fail(`is ${fileSize} bytes long, too short for a safetensors header`);
  const prefix = new Uint8Array(8);
  readSync(fd, prefix, 0, 8, 0);
  const headerLength = Number(new DataView(prefix.buffer).getBigUint64(0, true));
  // A pickle starts with 0x80 and a zip with "PK"; but a valid header length can begin with those bytes too
  // (any length ≡ 0x80 mod 256), so only call it a pickle when the length cannot be a safetensors header.
  const looksPickled = prefix[0] === 0x80 || (prefix[0] === 0x50 && prefix[1] === 0x4b);
  if (looksPickled && 8 + headerLength > fileSize) fail(PICKLE_HINT, 'pickle_refused');
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`declares a ${headerLength}-byte header (limit ${MAX_HEADER_BYTES}); the file is corrupt or not safetensors`);
  }
  if (8 + headerLength > fileSize) fail(`declares a ${headerLength}-byte header but the file has only ${fileSize} bytes`, 'truncated');
  const headerBytes = new Uint8Array(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__["${k}"] is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) fail(`tensor "${name}" has no description`);
    if (!isDType(e.dtype)) {
      fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${name}" has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor "${name}" has data_offsets [${begin}, ${end}] that end before they start`);
    if (end > dataLength) {
      fail(`tensor "${name}" ends at byte ${end} of the data section, which has only ${dataLength} bytes`, 'truncated');
    }
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (expected !== end - begin) {
      fail(`tensor "${name}" is ${end - begin} bytes but ${dtype} × [${shape.join(', ')}] needs ${expected}`);
    }
    tensors.set(name, { name, dtype, shape, offset: dataStart + begin, byteLength: end - begin });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.byteLength) {
      fail(`tensors "${prev.name}" and "${sorted[i].name}" overlap in the data section`);
    }
  }
  return { tensors, metadata, dataStart };
}
