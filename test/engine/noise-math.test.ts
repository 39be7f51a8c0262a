import { describe, expect, it } from 'vitest';
import { avx2Log, avx2SinCos } from '../../engine/noise/avx-mathfun.ts';
import { fmaf } from '../../engine/noise/fma.ts';

/** Exact value of a finite double as mantissa · 2^exponent. */
function exact(x: number): { m: bigint; e: number } {
  let e = 0;
  while (!Number.isInteger(x)) {
    x *= 2;
    e--;
  }
  return { m: BigInt(x), e };
}

/** Reference fmaf: a·b + c summed exactly with BigInts, then rounded once to float32 (nearest, ties to even). */
function referenceFmaf(a: number, b: number, c: number): number {
  const p = exact(a);
  const q = exact(b);
  const r = exact(c);
  const e = Math.min(p.e + q.e, r.e);
  let m = ((p.m * q.m) << BigInt(p.e + q.e - e)) + (r.m << BigInt(r.e - e));
  const negative = m < 0n;
  if (negative) m = -m;
  const shift = Math.max(m.toString(2).length - 24, -149 - e);
  if (shift > 0) {
    const kept = m >> BigInt(shift);
    const rest = m - (kept << BigInt(shift));
    const half = 1n << BigInt(shift - 1);
    m = rest > half || (rest === half && (kept & 1n) === 1n) ? kept + 1n : kept;
  }
  const value = Number(m) * 2 ** (e + Math.max(shift, 0));
  return negative ? -value : value;
}

/** A deterministic stream of float32 values with varied signs and exponents. */
function* floats(count: number): Generator<number> {
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < count; i++) yield Math.fround((next() - 0.5) * 2 ** Math.floor(next() * 40 - 20));
}

describe('fmaf', () => {
  it('rounds once where rounding the double sum would land on a float32 midpoint', () => {
    const a = Math.fround(1 + 2 ** -12); // a² = 1 + 2^-11 + 2^-24: halfway between two float32s
    const up = 1 + 2 ** -11 + 2 ** -23;
    const down = 1 + 2 ** -11;
    expect(Math.fround(a * a + 2 ** -60)).toBe(down); // the naive double-then-float rounding goes wrong
    expect(fmaf(a, a, 2 ** -60)).toBe(up);
    expect(fmaf(a, a, -(2 ** -60))).toBe(down);
    expect(fmaf(a, a, 0)).toBe(down); // an exact tie goes to even
  });

  it('matches exact BigInt arithmetic on random and cancelling inputs', () => {
    const values = [...floats(6000)];
    const wrong: number[][] = [];
    for (let i = 0; i + 2 < values.length; i += 3) {
      const [a, b, c] = values.slice(i, i + 3);
      const cancelling = -Math.fround(a * b); // leaves only the product's rounding error
      for (const addend of [c, cancelling]) {
        if (fmaf(a, b, addend) !== referenceFmaf(a, b, addend)) wrong.push([a, b, addend]);
      }
    }
    expect(wrong).toEqual([]);
  });
});

// Only a guard against gross mistakes (a wrong constant, octant or sign shows as errors near 1e-3 or 2): the
// bit-exact check of these functions is the torch-randn conformance test.
describe('AVX2 log and sincos emulation', () => {
  const twoPi = Math.fround(2 * Math.PI);
  const ulp = (x: number) => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);

  it('log is within 1 ulp over the uniforms the kernel feeds it', () => {
    let worstUlps = 0;
    for (let k = 1; k < 2 ** 24; k += 97) {
      const x = k * 2 ** -24;
      const expected = Math.log(x);
      worstUlps = Math.max(worstUlps, Math.abs(avx2Log(x) - expected) / ulp(expected));
    }
    expect(worstUlps).toBeLessThanOrEqual(1);
    expect(avx2Log(1)).toBe(0);
  });

  it('sin and cos are within 1e-7 over [0, 2π)', () => {
    const out = { sin: 0, cos: 0 };
    let worst = 0;
    for (let k = 0; k < 2 ** 24; k += 89) {
      const theta = Math.fround(twoPi * k * 2 ** -24);
      avx2SinCos(theta, out);
      worst = Math.max(worst, Math.abs(out.sin - Math.sin(theta)), Math.abs(out.cos - Math.cos(theta)));
    }
    expect(worst).toBeLessThan(1e-7);
  });
});
