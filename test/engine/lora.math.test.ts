/**
 * Family math against explicit index formulas (lycoris_math.md), for layouts the reference fixtures do not
 * cover: Tucker LoKr, old-layout and conv GLoRA, input-axis (IA)^3, DoRA on either axis, OFT constraint, BOFT.
 */
import { describe, expect, it } from 'vitest';
import { detectModuleKind, type ModuleKind } from '../../engine/lora/index.ts';
import { moduleAdapters, ShapeError, type Adapter, type ModuleData } from '../../engine/lora/math/index.ts';

let seed = 12345;
function random(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  });
}

type Entries = Record<string, number[]>;

/** A module made of random tensors with these shapes (alpha as given). */
function module(shapes: Entries, alpha?: number, values: Record<string, Float32Array> = {}): { kind: ModuleKind; data: ModuleData } {
  const tensors = new Map(Object.entries(shapes).map(([e, s]) => [e, values[e] ?? random(s.reduce((a, b) => a * b, 1))]));
  if (alpha !== undefined) tensors.set('alpha', Float32Array.of(alpha));
  const shape = (e: string) => (e === 'alpha' ? [] : shapes[e]);
  const kind = detectModuleKind(new Set(tensors.keys()), shape);
  if (typeof kind === 'string') throw new Error(kind);
  return {
    kind,
    data: {
      name: 'test',
      has: (e) => tensors.has(e),
      shape,
      read: (e) => tensors.get(e)!,
      scale: (rank) => (alpha && rank ? alpha / rank : 1),
    },
  };
}

function weightAdapter(m: { kind: ModuleKind; data: ModuleData }, target: number[]): Adapter {
  return moduleAdapters(m.kind, m.data, target, undefined).weight!;
}

function apply(adapter: Adapter, w: Float32Array): Float32Array {
  if (adapter.kind === 'weight') return adapter.adapt(w);
  const d = adapter.delta();
  return w.map((v, i) => v + d[i]);
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  expect(m / s).toBeLessThan(tol);
}

describe('LoRA family math', () => {
  it('LoCon with a Tucker core: ΔW[o,c,h,w] = scale·Σ up[o,a]·mid[a,b,h,w]·down[b,c]', () => {
    const [out, inp, r, k] = [6, 5, 3, 3];
    const m = module({ up: [out, r, 1, 1], down: [r, inp, 1, 1], mid: [r, r, k, k] }, 1.5);
    const delta = (weightAdapter(m, [out, inp, k, k]) as Extract<Adapter, { kind: 'additive' }>).delta();
    const [up, down, mid] = ['up', 'down', 'mid'].map((e) => m.data.read(e));
    const want = new Float32Array(out * inp * k * k);
    for (let o = 0; o < out; o++)
      for (let c = 0; c < inp; c++)
        for (let h = 0; h < k * k; h++)
          for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) want[(o * inp + c) * k * k + h] += (1.5 / r) * up[o * r + a] * mid[(a * r + b) * k * k + h] * down[b * inp + c];
    close(delta, want);
  });

  it('LoKr with a Tucker W2: ΔW = scale·W1 ⊗ (t2 ×₁ w2_aᵀ ×₂ w2_bᵀ)', () => {
    const [ol, im, ok, inn, r, k] = [2, 3, 4, 2, 2, 3];
    const m = module({ lokr_w1: [ol, im], lokr_t2: [r, r, k, k], lokr_w2_a: [r, ok], lokr_w2_b: [r, inn] }, 4);
    expect(m.kind).toMatchObject({ family: 'lokr', tucker: true });
    const delta = (weightAdapter(m, [ol * ok, im * inn, k, k]) as Extract<Adapter, { kind: 'additive' }>).delta();
    const [w1, t2, a, b] = ['lokr_w1', 'lokr_t2', 'lokr_w2_a', 'lokr_w2_b'].map((e) => m.data.read(e));
    const w2 = (p: number, q: number, h: number) => {
      let s = 0;
      for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) s += t2[(i * r + j) * k * k + h] * a[i * ok + p] * b[j * inn + q];
      return s;
    };
    const want = new Float32Array(delta.length);
    const cols = im * inn;
    for (let i = 0; i < ol; i++)
      for (let j = 0; j < ok; j++)
        for (let p = 0; p < im; p++)
          for (let q = 0; q < inn; q++) for (let h = 0; h < k * k; h++) want[((i * ok + j) * cols + p * inn + q) * k * k + h] = (4 / r) * w1[i * im + p] * w2(j, q, h);
    close(delta, want);
  });

  it('LoKr with both factors full ignores alpha (scale 1)', () => {
    const m = module({ lokr_w1: [2, 2], lokr_w2: [3, 4] }, 10000);
    const delta = (weightAdapter(m, [6, 8]) as Extract<Adapter, { kind: 'additive' }>).delta();
    const [w1, w2] = [m.data.read('lokr_w1'), m.data.read('lokr_w2')];
    expect(delta[0]).toBeCloseTo(w1[0] * w2[0], 6);
    expect(delta[6 * 8 - 1]).toBeCloseTo(w1[3] * w2[11], 6);
  });

  it('GLoRA: W + scale·(W ×_in A + B), conv and the old layout', () => {
    const [out, inp, r, k] = [4, 4, 2, 3];
    const conv = module({ a1: [inp, r, 1, 1], a2: [r, inp, 1, 1], b1: [out, r, 1, 1], b2: [r, inp, k, k] }, 1);
    const w = random(out * inp * k * k);
    const got = weightAdapter(conv, [out, inp, k, k]);
    expect(got.kind).toBe('weight');
    const [a1, a2, b1, b2] = ['a1', 'a2', 'b1', 'b2'].map((e) => conv.data.read(e));
    const A = (i: number, j: number) => a1[i * r] * a2[j] + a1[i * r + 1] * a2[inp + j];
    const want = Float32Array.from(w);
    for (let o = 0; o < out; o++)
      for (let j = 0; j < inp; j++)
        for (let h = 0; h < k * k; h++) {
          let v = b1[o * r] * b2[j * k * k + h] + b1[o * r + 1] * b2[(inp + j) * k * k + h];
          for (let i = 0; i < inp; i++) v += w[(o * inp + i) * k * k + h] * A(i, j);
          want[(o * inp + j) * k * k + h] += (1 / r) * v;
        }
    close(apply(got, w), want);
    // Old layout (a2 [in, r], a1 [r, in], b2 [out, r], b1 [r, in]) on a non-square layer.
    const [o2, i2] = [5, 3];
    const old = module({ a2: [i2, r], a1: [r, i2], b2: [o2, r], b1: [r, i2] });
    const w2 = random(o2 * i2);
    const [oa1, oa2, ob1, ob2] = ['a1', 'a2', 'b1', 'b2'].map((e) => old.data.read(e));
    const want2 = Float32Array.from(w2);
    for (let o = 0; o < o2; o++)
      for (let j = 0; j < i2; j++) {
        let v = 0;
        for (let q = 0; q < r; q++) v += ob2[o * r + q] * ob1[q * i2 + j];
        for (let i = 0; i < i2; i++) for (let q = 0; q < r; q++) v += w2[o * i2 + i] * oa2[i * r + q] * oa1[q * i2 + j];
        want2[o * i2 + j] += v;
      }
    close(apply(weightAdapter(old, [o2, i2]), w2), want2);
  });

  it('(IA)^3 scales output rows, or input columns when on_input', () => {
    const w = random(3 * 4 * 2);
    const rows = module({ ia3: [1, 3, 1, 1], on_input: [] }, undefined, { on_input: Float32Array.of(0) });
    const cols = module({ ia3: [4], on_input: [] }, undefined, { on_input: Float32Array.of(1) });
    const vr = rows.data.read('ia3');
    const vc = cols.data.read('ia3');
    close(apply(weightAdapter(rows, [3, 4, 1, 2]), w), w.map((x, i) => x * (1 + vr[Math.floor(i / 8)])));
    close(apply(weightAdapter(cols, [3, 4, 1, 2]), w), w.map((x, i) => x * (1 + vc[Math.floor(i / 2) % 4])));
    expect(() => weightAdapter(cols, [3, 5])).toThrow(ShapeError);
  });

  it('DoRA normalises per output row or per input channel by the magnitude shape', () => {
    const [out, inp] = [4, 6];
    const w = random(out * inp);
    const norms = (v: Float32Array, perOutput: boolean) =>
      Array.from({ length: perOutput ? out : inp }, (_, c) => {
        let s = 0;
        for (let i = 0; i < v.length; i++) if ((perOutput ? Math.floor(i / inp) : i % inp) === c) s += v[i] ** 2;
        return Math.sqrt(s);
      });
    const perOut = module({ up: [out, 2], down: [2, inp], dora_scale: [out, 1] }, 2);
    const perIn = module({ up: [out, 2], down: [2, inp], dora_scale: [1, inp] }, 2);
    const peft = module({ up: [out, 2], down: [2, inp], magnitude: [out] });
    for (const [m, axis, entry] of [[perOut, true, 'dora_scale'], [perIn, false, 'dora_scale'], [peft, true, 'magnitude']] as const) {
      expect(m.kind.dora).toBe(true);
      const merged = apply(weightAdapter(m, [out, inp]), w);
      close(norms(merged, axis), Array.from(m.data.read(entry), Math.abs), 1e-5);
    }
    expect(() => weightAdapter(module({ up: [out, 2], down: [2, inp], dora_scale: [3, 1] }), [out, inp])).toThrow(/fits neither the 4 outputs nor the 6 inputs/);
  });

  it('OFT rotates each block of rows (Rᵀ·W_k) and limits ‖Q‖ to alpha·out', () => {
    const [blocks, b, cols] = [3, 4, 5];
    const out = blocks * b;
    const w = random(out * cols);
    const columnNorms = (v: Float32Array) =>
      Array.from({ length: blocks * cols }, (_, i) => {
        const [k, c] = [Math.floor(i / cols), i % cols];
        let s = 0;
        for (let r = 0; r < b; r++) s += v[(k * b + r) * cols + c] ** 2;
        return Math.sqrt(s);
      });
    const free = module({ oft_blocks: [blocks, b, b] });
    const rotated = apply(weightAdapter(free, [out, cols]), w);
    close(columnNorms(rotated), columnNorms(w));
    expect(Math.max(...rotated.map((v, i) => Math.abs(v - w[i])))).toBeGreaterThan(1e-2);
    // A tiny constraint keeps the rotation near the identity.
    const limited = module({ oft_blocks: [blocks, b, b] }, 1e-6, { oft_blocks: free.data.read('oft_blocks') });
    const near = apply(weightAdapter(limited, [out, cols]), w);
    expect(Math.max(...near.map((v, i) => Math.abs(v - w[i])))).toBeLessThan(1e-4);
    expect(() => weightAdapter(free, [out + 1, cols])).toThrow(/do not tile the weight's 13 outputs/);
  });

  it('BOFT is an orthogonal transform of the rows, the identity for zero blocks', () => {
    const [stages, count, b, cols] = [3, 4, 2, 3];
    const out = count * b;
    const w = random(out * cols);
    const m = module({ oft_blocks: [stages, count, b, b] });
    expect(m.kind.family).toBe('boft');
    const result = apply(weightAdapter(m, [out, cols]), w);
    const colNorm = (v: Float32Array, c: number) => Math.sqrt(Array.from({ length: out }, (_, r) => v[r * cols + c] ** 2).reduce((a, x) => a + x));
    for (let c = 0; c < cols; c++) expect(colNorm(result, c)).toBeCloseTo(colNorm(w, c), 5);
    expect(Math.max(...result.map((v, i) => Math.abs(v - w[i])))).toBeGreaterThan(1e-2);
    const zero = module({ oft_blocks: [stages, count, b, b] }, undefined, { oft_blocks: new Float32Array(stages * count * b * b) });
    close(apply(weightAdapter(zero, [out, cols]), w), w, 1e-7);
  });

  it('refuses tensors that do not fit the weight', () => {
    expect(() => weightAdapter(module({ up: [6, 2], down: [2, 4] }), [6, 5])).toThrow(/gives a \[6, 4\] change but the model weight is \[6, 5\]/);
    expect(() => weightAdapter(module({ hada_w1_a: [6, 2], hada_w1_b: [2, 4], hada_w2_a: [6, 2], hada_w2_b: [2, 3] }), [6, 4])).toThrow(ShapeError);
    expect(() => weightAdapter(module({ lokr_w1: [2, 2], lokr_w2: [3, 3] }), [6, 5])).toThrow(ShapeError);
    expect(() => weightAdapter(module({ diff: [3, 4] }), [4, 3])).toThrow(ShapeError);
  });
});
