/**
 * Bakes LoRAs into a single-file checkpoint: the output has the input's tensor names, order, dtypes, shapes
 * and metadata; tensors no LoRA touches are copied byte for byte. The file is streamed one tensor at a time,
 * so multi-GB checkpoints never sit in memory whole. A fused tensor (OpenCLIP's in_proj q/k/v) is read once
 * and each of its row slices merged in place. Step schedules are baked at their first-step value.
 */
import { resolve } from 'node:path';
import { InvalidInputError } from '../errors.ts';
import { openCheckpoint } from '../models/checkpoint.ts';
import { transpose2d, type WeightRef } from '../models/weights.ts';
import { writeSafetensors, type TensorEntry } from '../safetensors/index.ts';
import { fromFloat32, toFloat32 } from '../tensor/dtype.ts';
import { loraLog } from './log.ts';
import { LoraSet, type LoraSetOptions } from './lora-set.ts';
import type { LoraSpec } from './spec.ts';

export interface BakeResult {
  readonly outPath: string;
  /** File tensors rewritten (the others were copied). */
  readonly changedTensors: number;
  readonly copiedTensors: number;
}

export function bakeCheckpoint(
  checkpointPath: string,
  specs: readonly (LoraSpec | string)[],
  outPath: string,
  options: LoraSetOptions = {},
): BakeResult {
  if (resolve(checkpointPath) === resolve(outPath)) {
    throw new InvalidInputError(`bake output ${outPath} is the input checkpoint; write to another file`);
  }
  const checkpoint = openCheckpoint(checkpointPath);
  try {
    if (checkpoint.layout !== 'single-file') {
      throw new InvalidInputError(`${checkpointPath} is a diffusers folder; bake reads and writes single-file (.safetensors) checkpoints`);
    }
    const started = performance.now();
    const set = LoraSet.open(checkpoint, specs, options);
    // Canonical names of changed weights, grouped by the file tensor that stores them.
    const byTensor = new Map<string, { name: string; ref: WeightRef }[]>();
    for (const name of set.names()) {
      const ref = checkpoint.weight(name);
      byTensor.set(ref.tensor, [...(byTensor.get(ref.tensor) ?? []), { name, ref }]);
    }
    // A single-file checkpoint: every weight lives in the same file.
    const source = (checkpoint.weights.values().next().value as WeightRef).file;
    const entries: TensorEntry[] = source
      .infos()
      .sort((a, b) => a.offset - b.offset)
      .map((info) => {
        const changes = byTensor.get(info.name);
        const data = changes
          ? () => {
              // A fresh buffer per read, so the float32 values may be changed in place.
              const values = toFloat32(source.readBytes(info.name), info.dtype);
              for (const { name, ref } of changes) mergeInto(values, info.shape, ref, set.mergedWeight(name, logical(values, info.shape, ref)));
              return fromFloat32(values, info.dtype);
            }
          : () => source.readBytes(info.name);
        return { name: info.name, dtype: info.dtype, shape: info.shape, data };
      });
    writeSafetensors(outPath, entries, source.metadata);
    loraLog(options).debug(() => `baked ${set.loras.length} LoRA(s) into ${outPath}: ${byTensor.size} tensors changed in ${(performance.now() - started).toFixed(0)} ms`);
    return { outPath, changedTensors: byTensor.size, copiedTensors: entries.length - byTensor.size };
  } finally {
    checkpoint.close();
  }
}

/** The weight `ref` describes, taken from its whole file tensor `values` (a row slice, possibly transposed). */
function logical(values: Float32Array, shape: readonly number[], ref: WeightRef): Float32Array {
  const cols = values.length / shape[0];
  const rows = ref.rows ?? { start: 0, count: shape[0] };
  const slice = values.slice(rows.start * cols, (rows.start + rows.count) * cols);
  return ref.transposed ? transpose2d(slice, shape[0], cols) : slice;
}

function mergeInto(values: Float32Array, shape: readonly number[], ref: WeightRef, merged: Float32Array): void {
  const cols = values.length / shape[0];
  const start = (ref.rows?.start ?? 0) * cols;
  values.set(ref.transposed ? transpose2d(merged, ref.shape[0], ref.shape[1]) : merged, start);
}
