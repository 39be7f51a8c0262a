/** (IA)^3 (lycoris_math.md §6): F(W) = W ⊙ (1 + w), w scaling output channels, or input channels when on_input. */
import { numel } from '../../safetensors/index.ts';
import { ShapeError, type ModuleData, type WeightAdapter } from './adapter.ts';

export function ia3Adapter(d: ModuleData, target: readonly number[]): WeightAdapter {
  const onInput = d.read('on_input')[0] !== 0;
  const length = numel(d.shape('ia3'));
  const axis = onInput ? (target[1] ?? 1) : target[0];
  if (length !== axis) {
    throw new ShapeError(`${d.name}: (IA)^3 vector has ${length} values but the weight has ${axis} ${onInput ? 'inputs' : 'outputs'}`);
  }
  return {
    kind: 'weight',
    adapt: (w) => {
      const v = d.read('ia3');
      const inputs = target[1] ?? 1;
      const kk = numel(target) / (target[0] * inputs);
      const result = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const channel = onInput ? Math.floor(i / kk) % inputs : Math.floor(i / (inputs * kk));
        result[i] = w[i] * (1 + v[channel]);
      }
      return result;
    },
  };
}
