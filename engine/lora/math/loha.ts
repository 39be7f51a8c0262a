/**
 * LoHa (lycoris_math.md §2): ΔW = (alpha/r) · (w1_a·w1_b) ⊙ (w2_a·w2_b), r = rank of hada_w1_b. With Tucker
 * cores each arm is Σ_i Σ_j t[i,j,h,w] · a[i,o] · b[j,c], where the `_a` factors are stored rank-first.
 */
import { expectMatrix, factorProduct, scaled, ShapeError, type AdditiveAdapter, type ModuleData } from './adapter.ts';

const arm = (d: ModuleData, n: 1 | 2) => factorProduct(d, `hada_w${n}_a`, `hada_w${n}_b`, `hada_t${n}`);

export function lohaAdapter(d: ModuleData, target: readonly number[]): AdditiveAdapter {
  const one = arm(d, 1);
  const two = arm(d, 2);
  if (one.rows !== two.rows || one.cols !== two.cols) {
    throw new ShapeError(`${d.name}: the two Hadamard arms are [${one.rows}, ${one.cols}] and [${two.rows}, ${two.cols}]`);
  }
  expectMatrix(d.name, one.rows, one.cols, target);
  const rank = d.shape('hada_w1_b')[0];
  return {
    kind: 'additive',
    delta: () => {
      const p = one.values();
      const q = two.values();
      for (let i = 0; i < p.length; i++) p[i] *= q[i];
      return scaled(p, d.scale(rank));
    },
  };
}
