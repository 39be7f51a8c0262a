/**
 * The few dense matrix operations LoRA math needs, on row-major arrays. Products accumulate in float64 and
 * store float32, so a delta does not depend on the order in which factors were stored.
 */

type Matrix = Float32Array | Float64Array;

/** a [m, k] · b [k, n] → [m, n] (float32 unless an output array is given). */
export function matmul<T extends Matrix = Float32Array>(a: ArrayLike<number>, m: number, k: number, b: ArrayLike<number>, n: number, out?: T): T {
  out ??= new Float32Array(m * n) as T;
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const row = p * n;
      for (let j = 0; j < n; j++) acc[j] += aip * b[row + j];
    }
    out.set(acc, i * n);
  }
  return out;
}

/** aᵀ · b for a [k, m], b [k, n] → [m, n] (Tucker factors are stored rank-first). */
export function matmulTN<T extends Matrix = Float32Array>(a: ArrayLike<number>, k: number, m: number, b: ArrayLike<number>, n: number, out?: T): T {
  out ??= new Float32Array(m * n) as T;
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const api = a[p * m + i];
      if (api === 0) continue;
      const row = p * n;
      for (let j = 0; j < n; j++) acc[j] += api * b[row + j];
    }
    out.set(acc, i * n);
  }
  return out;
}

/** Kronecker product of a [ar, ac] and b [br, bc] → [ar·br, ac·bc]. */
export function kron(a: ArrayLike<number>, ar: number, ac: number, b: ArrayLike<number>, br: number, bc: number): Float32Array {
  const cols = ac * bc;
  const out = new Float32Array(ar * br * cols);
  for (let i = 0; i < ar; i++) {
    for (let p = 0; p < ac; p++) {
      const aip = a[i * ac + p];
      for (let j = 0; j < br; j++) {
        const dst = (i * br + j) * cols + p * bc;
        const src = j * bc;
        for (let q = 0; q < bc; q++) out[dst + q] = aip * b[src + q];
      }
    }
  }
  return out;
}

/**
 * Folds a Tucker core [r1, r2, kh, kw] into the factor b [r2, c]: result[i, c, h, w] = Σ_j core[i, j, h, w]·b[j, c],
 * shaped [r1, c·kh·kw]. Multiplying by the other factor then gives the full kernel.
 */
export function foldTuckerCore(core: ArrayLike<number>, coreShape: readonly number[], b: ArrayLike<number>, c: number): Float32Array {
  const [r1, r2, kh = 1, kw = 1] = coreShape;
  const kk = kh * kw;
  const out = new Float32Array(r1 * c * kk);
  for (let i = 0; i < r1; i++) {
    for (let j = 0; j < r2; j++) {
      for (let hw = 0; hw < kk; hw++) {
        const g = core[(i * r2 + j) * kk + hw];
        if (g === 0) continue;
        for (let ch = 0; ch < c; ch++) out[(i * c + ch) * kk + hw] += g * b[j * c + ch];
      }
    }
  }
  return out;
}

/** Inverse of a square matrix [n, n] by Gauss-Jordan elimination with partial pivoting, in float64. */
export function invert(a: ArrayLike<number>, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * n + col]) > Math.abs(m[pivot * n + col])) pivot = r;
    const p = m[pivot * n + col];
    if (p === 0) throw new Error('singular matrix');
    if (pivot !== col) {
      for (let j = 0; j < n; j++) {
        [m[col * n + j], m[pivot * n + j]] = [m[pivot * n + j], m[col * n + j]];
        [inv[col * n + j], inv[pivot * n + j]] = [inv[pivot * n + j], inv[col * n + j]];
      }
    }
    for (let j = 0; j < n; j++) {
      m[col * n + j] /= p;
      inv[col * n + j] /= p;
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * n + col];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j] -= f * m[col * n + j];
        inv[r * n + j] -= f * inv[col * n + j];
      }
    }
  }
  return inv;
}

/** Product of all dimensions after the first (the column count of the row-major 2-D view). */
export function trailing(shape: readonly number[]): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) n *= shape[i];
  return n;
}
