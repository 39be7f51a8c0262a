/**
 * DoRA (lycoris_math.md §4): with Wc = W + ΔW (alpha/rank applied, no strength), F(W) = m ⊙ Wc / ‖Wc‖, the
 * norm taken per output row or per input channel, by the magnitude's shape: PEFT's lora_magnitude_vector is
 * per output; a dora_scale shaped (out, 1, …) is per output and (1, in, …) per input (LyCORIS before and
 * after v3.2); a 1-D vector is per output when its length equals the output count (ComfyUI's rule). The norm
 * is that of the adapted weight (paper, PEFT, LyCORIS), plus float32 epsilon as LyCORIS adds.
 */
import { numel } from '../../safetensors/index.ts';
import { ShapeError, type AdditiveAdapter, type ModuleData, type WeightAdapter } from './adapter.ts';

const EPS = 2 ** -23;

export function doraAdapter(d: ModuleData, inner: AdditiveAdapter, target: readonly number[]): WeightAdapter {
  const entry = d.has('magnitude') ? 'magnitude' : 'dora_scale';
  const shape = d.shape(entry);
  const length = numel(shape);
  const out = target[0];
  const inputs = target[1] ?? 1;
  const fitsOutput = length === out && (entry === 'magnitude' || shape.length === 1 || shape[0] === out);
  const fitsInput = entry === 'dora_scale' && length === inputs && (shape.length === 1 || shape[0] === 1);
  if (!fitsOutput && !fitsInput) {
    throw new ShapeError(`${d.name}: ${entry} is [${shape.join(', ')}], which fits neither the ${out} outputs nor the ${inputs} inputs of the weight`);
  }
  const perOutput = fitsOutput;
  return {
    kind: 'weight',
    adapt: (w) => {
      const adapted = inner.delta();
      for (let i = 0; i < adapted.length; i++) adapted[i] += w[i];
      const magnitude = d.read(entry);
      const kk = adapted.length / (out * inputs);
      const norms = new Float64Array(perOutput ? out : inputs);
      const channel = (i: number) => (perOutput ? Math.floor(i / (inputs * kk)) : Math.floor(i / kk) % inputs);
      for (let i = 0; i < adapted.length; i++) norms[channel(i)] += adapted[i] * adapted[i];
      const factors = norms.map((n, c) => magnitude[c] / (Math.sqrt(n) + EPS));
      for (let i = 0; i < adapted.length; i++) adapted[i] *= factors[channel(i)];
      return adapted;
    },
  };
}
