/**
 * LoHa (lycoris_math.md §2): ΔW = (alpha/r) · (w1_a·w1_b) ⊙ (w2_a·w2_b), r = rank of hada_w1_b. With Tucker
 * cores each arm is Σ_i Σ_j t[i,j,h,w] · a[i,o] · b[j,c], where the `_a` factors are stored rank-first.
 */
import { foldTuckerCore, matmul, matmulTN, trailing } from '../linalg.ts';
import { expectMatrix, scaled, ShapeError, type AdditiveAdapter, type ModuleData } from './adapter.ts';

interface Arm {
  readonly rows: number;
  readonly cols: number;
  product(): Float32Array;
}

function arm(d: ModuleData, n: 1 | 2): Arm {
  const [a, b, t] = [`hada_w${n}_a`, `hada_w${n}_b`, `hada_t${n}`];
  const as = d.shape(a);
  const bs = d.shape(b);
  if (d.has(t)) {
    const ts = d.shape(t);
    if (ts[0] !== as[0] || ts[1] !== bs[0]) throw new ShapeError(`${d.name}: ${t} is [${ts.join(', ')}], ${a} [${as.join(', ')}], ${b} [${bs.join(', ')}]`);
    const cols = trailing(bs) * (trailing(ts) / ts[1]);
    return { rows: as[1], cols, product: () => matmulTN(d.read(a), as[0], as[1], foldTuckerCore(d.read(t), ts, d.read(b), trailing(bs)), cols) };
  }
  if (as[1] !== bs[0]) throw new ShapeError(`${d.name}: ${a} is [${as.join(', ')}] but ${b} is [${bs.join(', ')}]`);
  return { rows: as[0], cols: trailing(bs), product: () => matmul(d.read(a), as[0], as[1], d.read(b), trailing(bs)) };
}

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
      const p = one.product();
      const q = two.product();
      for (let i = 0; i < p.length; i++) p[i] *= q[i];
      return scaled(p, d.scale(rank));
    },
  };
}
