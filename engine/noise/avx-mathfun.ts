/**
 * One lane of the float32 `log256_ps` and `sincos256_ps` that PyTorch's AVX2 `randn` kernel calls
 * (aten/src/ATen/native/cpu/avx_mathfun.h: Cephes-style range reduction and polynomials). Every operation
 * is rounded to float32 as the SIMD instruction does, and the multiply-adds that the compiler fuses into FMA
 * instructions in torch's AVX2 build use `fmaf`; which ones are fused was settled by the fixtures
 * (fixtures/torch-randn): any other choice leaves elements 1–2 ulp off.
 */
import { fmaf } from './fma.ts';

const f = Math.fround;

const SQRT_HALF = f(Math.SQRT1_2);
const LOG_POLY = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
// ln 2 = LN2_HI + LN2_LO, so that e·ln 2 keeps extra precision (e·LN2_HI is exact).
const LN2_LO = f(-2.12194440e-4);
const LN2_HI = f(0.693359375);

const bits = new Float32Array(1);
const bitsAsInt = new Uint32Array(bits.buffer);

/**
 * Natural logarithm of a float32 in (0, 1], the only inputs the Box–Muller kernel gives it (1 − u with u a
 * 24-bit uniform), so the kernel's handling of zero, negatives and subnormals is not needed.
 */
export function avx2Log(x: number): number {
  bits[0] = x;
  const raw = bitsAsInt[0];
  let exponent = (raw >>> 23) - 126;
  bitsAsInt[0] = (raw & ~0x7f800000) | 0x3f000000; // mantissa scaled into [0.5, 1)
  let m = bits[0];
  // Below √½ the kernel uses 2m − 1 with exponent − 1, keeping the polynomial's argument in [√½ − 1, √2 − 1).
  const below = m < SQRT_HALF;
  if (below) exponent -= 1;
  m = f(f(m - 1) + (below ? m : 0));
  const z = f(m * m);
  let y = LOG_POLY[0];
  for (let k = 1; k < LOG_POLY.length; k++) y = fmaf(y, m, LOG_POLY[k]);
  y = f(y * m);
  y = fmaf(y, z, f(exponent * LN2_LO));
  y = f(y - f(z * 0.5));
  return fmaf(exponent, LN2_HI, f(m + y));
}

const FOUR_OVER_PI = f(1.27323954473516);
// −π/4 split in three parts for an extended-precision reduction (the first two are exact in few bits).
const MINUS_PI_4_A = f(-0.78515625);
const MINUS_PI_4_B = f(-2.4187564849853515625e-4);
const MINUS_PI_4_C = f(-3.774894977445941e-8);
const SIN_POLY = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COS_POLY = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);

/** Result slots of `avx2SinCos`, reused so the hot loop allocates nothing. */
export interface SinCos {
  sin: number;
  cos: number;
}

/**
 * Sine and cosine of a float32 x ≥ 0 (the kernel passes θ = 2π·u), written into `out`. The argument is
 * reduced to [−π/4, π/4] around the even octant j nearest x·4/π; both polynomials are evaluated and the
 * octant picks which one is sine and which cosine, and their signs.
 */
export function avx2SinCos(x: number, out: SinCos): void {
  let j = Math.trunc(f(x * FOUR_OVER_PI));
  j = (j + 1) & ~1;
  let r = fmaf(j, MINUS_PI_4_A, x);
  r = fmaf(j, MINUS_PI_4_B, r);
  r = fmaf(j, MINUS_PI_4_C, r);
  const z = f(r * r);

  let cosPoly = fmaf(COS_POLY[0], z, COS_POLY[1]);
  cosPoly = fmaf(cosPoly, z, COS_POLY[2]);
  cosPoly = fmaf(f(cosPoly * z), z, -f(z * 0.5));
  cosPoly = f(cosPoly + 1);

  let sinPoly = fmaf(SIN_POLY[0], z, SIN_POLY[1]);
  sinPoly = fmaf(sinPoly, z, SIN_POLY[2]);
  sinPoly = fmaf(f(sinPoly * z), r, r);

  // In octants 2–3 and 6–7 (mod 8) the sine and cosine polynomials trade places.
  const swap = (j & 2) !== 0;
  const sin = swap ? cosPoly : sinPoly;
  const cos = swap ? sinPoly : cosPoly;
  out.sin = (j & 4) !== 0 ? -sin : sin;
  out.cos = ((j - 2) & 4) === 0 ? -cos : cos;
}
