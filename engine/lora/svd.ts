/**
 * Truncated SVD of a dense matrix by the randomized range finder with power iterations (Halko, Martinsson &
 * Tropp 2011): Q spans A·Ω, refined by (A·Aᵀ)^q; the small matrix QᵀA is decomposed exactly by one-sided
 * Jacobi rotations (after a QR step, so they work on a small square matrix). All in float64, seeded, so a
 * result is reproducible. When rank plus oversampling reaches min(rows, cols), the range is taken whole and
 * the decomposition is exact.
 */
import { matmul, matmulTN } from './linalg.ts';

export interface TruncatedSvd {
  /** [rows, rank]: left singular vectors times the singular values (kohya puts them in lora_up). */
  readonly up: Float32Array;
  /** [rank, cols]: right singular vectors, orthonormal rows. */
  readonly down: Float32Array;
  readonly rank: number;
  /** All singular values of the small problem, descending (the first `rank` are kept). */
  readonly singularValues: Float64Array;
}

export interface SvdOptions {
  readonly powerIterations?: number;
  readonly oversample?: number;
  readonly seed?: number;
}

export function truncatedSvd(a: Float32Array, rows: number, cols: number, rank: number, options: SvdOptions = {}): TruncatedSvd {
  const { powerIterations = 2, oversample = 8, seed = 1 } = options;
  const keep = Math.min(rank, rows, cols);
  const width = Math.min(keep + oversample, rows, cols);
  const normal = gaussian(seed);
  let q: Float64Array;
  if (width === rows && rows <= cols) {
    // The whole column space: Q = I, nothing to find.
    q = new Float64Array(rows * rows);
    for (let i = 0; i < rows; i++) q[i * rows + i] = 1;
  } else if (width === cols) {
    // A's own columns span its range exactly.
    q = orthonormalize(Float64Array.from(a), rows, cols, normal);
  } else {
    const omega = new Float64Array(cols * width);
    for (let i = 0; i < omega.length; i++) omega[i] = normal();
    q = orthonormalize(matmul(a, rows, cols, omega, width, new Float64Array(rows * width)), rows, width, normal);
    for (let i = 0; i < powerIterations; i++) {
      const z = orthonormalize(matmulTN(a, rows, cols, q, width, new Float64Array(cols * width)), cols, width, normal);
      q = orthonormalize(matmul(a, rows, cols, z, width, new Float64Array(rows * width)), rows, width, normal);
    }
  }
  // Bᵀ = Aᵀ Q [cols, width] = Q₂ R. Jacobi orthogonalises the columns of the small R: R J = X, so Bᵀ J = Q₂ X
  // has orthogonal columns V Σ, B = J Σ Vᵀ and A ≈ (Q J) Σ Vᵀ.
  const q2 = matmulTN(a, rows, cols, q, width, new Float64Array(cols * width));
  const r = new Float64Array(width * width);
  orthonormalize(q2, cols, width, normal, r);
  const x = Array.from({ length: width }, () => new Float64Array(width));
  for (let i = 0; i < width; i++) for (let c = 0; c < width; c++) x[c][i] = r[i * width + c];
  const j = jacobiColumns(x);
  const sigma = x.map((column) => Math.sqrt(column.reduce((sum, v) => sum + v * v, 0)));
  const order = [...sigma.keys()].sort((p, o) => sigma[o] - sigma[p]);
  const up = new Float32Array(rows * keep);
  const down = new Float32Array(keep * cols);
  /** Row `row` of m [n, width] times the vector v. */
  const dot = (m: Float64Array, row: number, v: Float64Array) => {
    let sum = 0;
    for (let i = 0; i < width; i++) sum += m[row * width + i] * v[i];
    return sum;
  };
  for (let k = 0; k < keep; k++) {
    const c = order[k];
    for (let row = 0; row < rows; row++) up[row * keep + k] = dot(q, row, j[c]) * sigma[c];
    if (sigma[c] > 0) for (let col = 0; col < cols; col++) down[k * cols + col] = dot(q2, col, x[c]) / sigma[c];
  }
  return { up, down, rank: keep, singularValues: Float64Array.from(order, (c) => sigma[c]) };
}

/**
 * Orthonormalises the columns of m [rows, cols] in place (modified Gram-Schmidt, twice for accuracy) and,
 * when `r` [cols, cols] is given, records the triangular factor: m_before = m_after · r. A column that
 * vanishes (A has lower rank) is replaced by a random orthogonal direction with a zero diagonal in r.
 */
function orthonormalize(m: Float64Array, rows: number, cols: number, normal: () => number, r?: Float64Array): Float64Array {
  for (let c = 0; c < cols; c++) {
    for (let attempt = 0; attempt < 3; attempt++) {
      let before = 0;
      for (let row = 0; row < rows; row++) before += m[row * cols + c] ** 2;
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < c; p++) {
          let dot = 0;
          for (let row = 0; row < rows; row++) dot += m[row * cols + p] * m[row * cols + c];
          for (let row = 0; row < rows; row++) m[row * cols + c] -= dot * m[row * cols + p];
          if (r && attempt === 0) r[p * cols + c] += dot;
        }
      }
      let norm = 0;
      for (let row = 0; row < rows; row++) norm += m[row * cols + c] ** 2;
      if (norm > 1e-24 * Math.max(before, 1e-300)) {
        const f = 1 / Math.sqrt(norm);
        for (let row = 0; row < rows; row++) m[row * cols + c] *= f;
        if (r && attempt === 0) r[c * cols + c] = Math.sqrt(norm);
        break;
      }
      for (let row = 0; row < rows; row++) m[row * cols + c] = normal();
    }
  }
  return m;
}

/**
 * One-sided Jacobi: rotates pairs of the columns `x` in place until all are orthogonal; returns the
 * accumulated rotation J as its columns (x_after = x_before · J).
 */
function jacobiColumns(x: Float64Array[]): Float64Array[] {
  const n = x.length;
  const j = Array.from({ length: n }, (_, c) => Float64Array.from({ length: n }, (_, r) => (r === c ? 1 : 0)));
  const rotate = (u: Float64Array, v: Float64Array, c: number, s: number) => {
    for (let r = 0; r < u.length; r++) {
      const a = u[r];
      const b = v[r];
      u[r] = c * a - s * b;
      v[r] = s * a + c * b;
    }
  };
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const xp = x[p];
        const xq = x[q];
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let r = 0; r < xp.length; r++) {
          alpha += xp[r] * xp[r];
          beta += xq[r] * xq[r];
          gamma += xp[r] * xq[r];
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        rotate(xp, xq, c, c * t);
        rotate(j[p], j[q], c, c * t);
      }
    }
    if (!rotated) break;
  }
  return j;
}

/** Standard normal numbers from a seeded generator (mulberry32 + Box-Muller). */
function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}
