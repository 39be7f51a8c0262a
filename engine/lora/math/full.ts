/** Full differences (LyCORIS `diff`, `diff_b`) and norm-layer changes (`w_norm`, `b_norm`): ΔW is stored as is. */
import { numel } from '../../safetensors/index.ts';
import { scaled, ShapeError, type AdditiveAdapter, type ModuleData } from './adapter.ts';

/** An additive change stored whole in `entry`; `scaleRank` applies alpha/rank (PEFT's lora_B.bias). */
export function storedDelta(d: ModuleData, entry: string, target: readonly number[], scaleRank?: number): AdditiveAdapter {
  const shape = d.shape(entry);
  if (numel(shape) !== numel(target) || (shape.length > 1 && shape[0] !== target[0])) {
    throw new ShapeError(`${d.name}: ${entry} is [${shape.join(', ')}] but the model tensor is [${target.join(', ')}]`);
  }
  return {
    kind: 'additive',
    delta: () => scaled(Float32Array.from(d.read(entry)), scaleRank === undefined ? 1 : d.scale(scaleRank)),
  };
}
