/**
 * LoKr (lycoris_math.md §3): ΔW = scale · W1 ⊗ W2, each factor full or a product (W2 also Tucker, `_a`
 * stored rank-first). The 2-D Kronecker product with W2 flattened to [out_k, in_n·kh·kw] is, row-major, the
 * 4-D one. scale = alpha/r with r the rank of the decomposed factor (W2's first), and 1 when both are full.
 */
import { kron, trailing } from '../linalg.ts';
import { expectMatrix, factorProduct, scaled, type AdditiveAdapter, type LazyMatrix, type ModuleData } from './adapter.ts';

/** W1 or W2: stored whole, or as a factor pair. */
function factor(d: ModuleData, n: 1 | 2): LazyMatrix {
  const full = `lokr_w${n}`;
  if (d.has(full)) {
    const s = d.shape(full);
    return { rows: s[0], cols: trailing(s), values: () => d.read(full) };
  }
  return factorProduct(d, `lokr_w${n}_a`, `lokr_w${n}_b`, `lokr_t${n}`);
}

export function lokrAdapter(d: ModuleData, target: readonly number[]): AdditiveAdapter {
  const w1 = factor(d, 1);
  const w2 = factor(d, 2);
  expectMatrix(d.name, w1.rows * w2.rows, w1.cols * w2.cols, target);
  const rank = d.has('lokr_w2_b') ? d.shape('lokr_w2_b')[0] : d.has('lokr_w1_b') ? d.shape('lokr_w1_b')[0] : undefined;
  return {
    kind: 'additive',
    delta: () => scaled(kron(w1.values(), w1.rows, w1.cols, w2.values(), w2.rows, w2.cols), d.scale(rank)),
  };
}
