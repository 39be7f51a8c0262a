/**
 * GLoRA (lycoris_math.md §5): F(W) = W + (alpha/r) · (W ×_in A + B), A = a1·a2 acting on the input axis,
 * B = b1·b2. Old LyCORIS files swapped the roles of a1/a2 and b1/b2; the layout is told apart by shapes as
 * ComfyUI does.
 */
import { numel } from '../../safetensors/index.ts';
import { matmul, trailing } from '../linalg.ts';
import { expectMatrix, ShapeError, type ModuleData, type WeightAdapter } from './adapter.ts';

export function gloraAdapter(d: ModuleData, target: readonly number[]): WeightAdapter {
  const [a1, a2, b1, b2] = ['a1', 'a2', 'b1', 'b2'].map((e) => {
    const s = d.shape(e);
    return [s[0], trailing(s)] as const;
  });
  const out = target[0];
  const inputs = target[1] ?? 1;
  const isNew = b2[0] === b1[1] && b1[1] === a1[1] && a1[1] === a2[0];
  const isOld = b2[1] === b1[0] && b1[0] === a1[0] && a1[0] === a2[1];
  if (!isNew && !isOld) throw new ShapeError(`${d.name}: GLoRA factors a1/a2/b1/b2 do not chain`);
  // Both layouts fit only square layers; ComfyUI then keeps "old" only at full rank.
  const old = isOld && (!isNew || (a2[0] === out && out === inputs));
  const [x, y, u, v] = old ? ['a2', 'a1', 'b2', 'b1'] : ['a1', 'a2', 'b1', 'b2'];
  const [xs, us, vs] = [x, u, v].map((e) => d.shape(e));
  const rank = d.shape(y)[0];
  if (xs[0] !== inputs || trailing(xs) !== rank) throw new ShapeError(`${d.name}: GLoRA input factor is [${xs.join(', ')}] but the weight has ${inputs} inputs`);
  expectMatrix(d.name, us[0], trailing(vs), target);
  return {
    kind: 'weight',
    adapt: (w) => {
      const scale = d.scale(rank);
      const a = matmul(d.read(x), inputs, rank, d.read(y), inputs);
      const b = matmul(d.read(u), us[0], trailing(us), d.read(v), trailing(vs));
      const kk = numel(target) / (out * inputs);
      // W ×_in A as one product: view W as [out·kh·kw, in] (input axis last), multiply, then add B.
      const wa = matmul(kk === 1 ? w : inputAxisLast(w, out, inputs, kk), out * kk, inputs, a, inputs);
      const result = Float32Array.from(w);
      for (let o = 0; o < out; o++) {
        for (let j = 0; j < inputs; j++) {
          for (let hw = 0; hw < kk; hw++) {
            const at = (o * inputs + j) * kk + hw;
            result[at] += scale * (wa[(o * kk + hw) * inputs + j] + b[at]);
          }
        }
      }
      return result;
    },
  };
}

/** [out, in, kk] → [out, kk, in]. */
function inputAxisLast(w: Float32Array, out: number, inputs: number, kk: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inputs; i++) for (let hw = 0; hw < kk; hw++) t[(o * kk + hw) * inputs + i] = w[(o * inputs + i) * kk + hw];
  }
  return t;
}
