/**
 * LoKr (lycoris_math.md §3): ΔW = scale · W1 ⊗ W2, each factor full or a product (W2 also Tucker, `_a`
 * stored rank-first). The 2-D Kronecker product with W2 flattened to [out_k, in_n·kh·kw] is, row-major, the
 * 4-D one. scale = alpha/r with r the rank of the decomposed factor (W2's first), and 1 when both are full.
 */
import { foldTuckerCore, kron, matmul, matmulTN, trailing } from '../linalg.ts';
import { expectMatrix, scaled, ShapeError, type AdditiveAdapter, type ModuleData } from './adapter.ts';

interface Factor {
  readonly rows: number;
  readonly cols: number;
  values(): Float32Array;
}

function factor(d: ModuleData, n: 1 | 2): Factor {
  const [full, a, b, t] = [`lokr_w${n}`, `lokr_w${n}_a`, `lokr_w${n}_b`, `lokr_t${n}`];
  if (d.has(full)) {
    const s = d.shape(full);
    return { rows: s[0], cols: trailing(s), values: () => d.read(full) };
  }
  const as = d.shape(a);
  const bs = d.shape(b);
  if (d.has(t)) {
    const ts = d.shape(t);
    if (ts[0] !== as[0] || ts[1] !== bs[0]) throw new ShapeError(`${d.name}: ${t} is [${ts.join(', ')}], ${a} [${as.join(', ')}], ${b} [${bs.join(', ')}]`);
    const cols = trailing(bs) * (trailing(ts) / ts[1]);
    return { rows: as[1], cols, values: () => matmulTN(d.read(a), as[0], as[1], foldTuckerCore(d.read(t), ts, d.read(b), trailing(bs)), cols) };
  }
  if (as[1] !== bs[0]) throw new ShapeError(`${d.name}: ${a} is [${as.join(', ')}] but ${b} is [${bs.join(', ')}]`);
  return { rows: as[0], cols: trailing(bs), values: () => matmul(d.read(a), as[0], as[1], d.read(b), trailing(bs)) };
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
