/**
 * `n` evenly spaced values from `start` to `end` inclusive, computed like torch.linspace (the first half counts
 * up from `start`, the second half down from `end`), so both endpoints are exact.
 */
export function linspace(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
  return out;
}
