import type { SafetensorsFile } from '../safetensors/index.ts';
import { DTYPE_BYTES, toFloat32, type DType } from '../tensor/dtype.ts';

/**
 * Where one model weight lives on disk: a tensor of a safetensors file, or a row range of one (OpenCLIP
 * stores q, k and v stacked in one `in_proj_weight`). Graphs and LoRA read weights through these, so a
 * weight is never copied before it is needed and the original bytes can always be read again.
 */
export interface WeightRef {
  readonly file: SafetensorsFile;
  /** The tensor's name inside the file. */
  readonly tensor: string;
  readonly dtype: DType;
  /** Shape of this weight (for a row slice, the slice's shape). */
  readonly shape: readonly number[];
  /** Absolute byte offset and length of this weight's bytes in the file. */
  readonly offset: number;
  readonly byteLength: number;
  /** For a slice of a fused tensor: the rows (dim 0) of the file tensor this weight covers. */
  readonly rows?: { readonly start: number; readonly count: number };
  /** The file stores the transpose of this 2-D weight (OpenCLIP's `text_projection`). */
  readonly transposed?: boolean;
}

export function refFromFile(file: SafetensorsFile, tensor: string): WeightRef {
  const info = file.info(tensor);
  return { file, tensor, dtype: info.dtype, shape: info.shape, offset: info.offset, byteLength: info.byteLength };
}

/** Rows [start, start+count) of a file tensor, as a weight of its own. */
export function rowSlice(ref: WeightRef, start: number, count: number): WeightRef {
  const rowBytes = ref.byteLength / ref.shape[0];
  return {
    ...ref,
    shape: [count, ...ref.shape.slice(1)],
    offset: ref.offset + start * rowBytes,
    byteLength: count * rowBytes,
    rows: { start: (ref.rows?.start ?? 0) + start, count },
  };
}

export function transposedRef(ref: WeightRef): WeightRef {
  if (ref.shape.length !== 2) throw new Error(`only 2-D weights can be transposed, ${ref.tensor} is [${ref.shape}]`);
  return { ...ref, shape: [ref.shape[1], ref.shape[0]], transposed: !ref.transposed };
}

/** The weight as float32 in its own (logical) shape, whatever its stored dtype. */
export function readWeight(ref: WeightRef): Float32Array {
  const values = toFloat32(ref.file.readAt(ref.offset, ref.byteLength), ref.dtype);
  return ref.transposed ? transpose2d(values, ref.shape[1], ref.shape[0]) : values;
}

/** The weight's raw stored bytes (its own dtype, file order). */
export function readRawWeight(ref: WeightRef): Uint8Array {
  return ref.file.readAt(ref.offset, ref.byteLength);
}

export function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

export function elementCount(ref: WeightRef): number {
  return ref.byteLength / DTYPE_BYTES[ref.dtype];
}
