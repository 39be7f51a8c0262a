/**
 * Single-precision fused multiply-add, `fmaf(a, b, c)`: a·b + c rounded to float32 once.
 *
 * PyTorch's AVX2 kernels are compiled with FMA enabled, and the compiler fuses some multiply-adds of
 * avx_mathfun into `vfmadd` instructions; matching torch bit for bit needs the single rounding.
 * For float32 inputs a·b is exact in a double, and so is the error of the double sum (TwoSum). Rounding the
 * double sum to float32 is then right except when it lands exactly on a float32 midpoint while the exact sum
 * lies slightly beyond it (double rounding): the sum's error says which way to go. Valid for finite inputs
 * whose result does not overflow.
 */
export function fmaf(a: number, b: number, c: number): number {
  const product = a * b;
  const sum = product + c;
  const cPart = sum - product;
  const error = product - (sum - cPart) + (c - cPart);
  const rounded = Math.fround(sum);
  if (error === 0 || rounded === sum) return rounded;
  // Mirror of `rounded` across `sum`: a float32 exactly when `sum` is the midpoint between the two.
  const other = 2 * sum - rounded;
  if (Math.fround(other) !== other) return rounded;
  return error > 0 ? Math.max(rounded, other) : Math.min(rounded, other);
}
