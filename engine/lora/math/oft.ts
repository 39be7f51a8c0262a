/**
 * OFT and BOFT (lycoris_math.md §7). Each b×b block B gives a rotation by the Cayley transform of its
 * skew-symmetric part, Q = B − Bᵀ, R = (I + Q)(I − Q)⁻¹, after limiting ‖Q‖ (all blocks together) to the
 * constraint alpha·out as LyCORIS's and kohya's modules do (alpha 0: no limit).
 * OFT: rows of W in groups of b, each group W_k → R_kᵀ·W_k. BOFT: m butterfly stages, each permuting the
 * rows, rotating consecutive groups by R (no transpose) and permuting back. An optional `rescale` multiplies
 * each output row afterwards. These give F(W); strength is applied by the caller as W + s·(F(W) − W).
 */
import { numel } from '../../safetensors/index.ts';
import { invert } from '../linalg.ts';
import { ShapeError, type ModuleData, type WeightAdapter } from './adapter.ts';

/** Cayley rotations of every block in `blocks` ([count·b·b], row-major b×b blocks), in float64. */
export function cayleyRotations(blocks: Float32Array, b: number, constraint: number): Float64Array[] {
  const count = blocks.length / (b * b);
  const q = new Float64Array(blocks.length);
  let norm = 0;
  for (let k = 0; k < count; k++) {
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < b; j++) {
        const v = blocks[k * b * b + i * b + j] - blocks[k * b * b + j * b + i];
        q[k * b * b + i * b + j] = v;
        norm += v * v;
      }
    }
  }
  norm = Math.sqrt(norm);
  if (constraint > 0 && norm + 1e-8 > constraint) {
    const f = constraint / (norm + 1e-8);
    for (let i = 0; i < q.length; i++) q[i] *= f;
  }
  const rotations: Float64Array[] = [];
  for (let k = 0; k < count; k++) {
    const plus = new Float64Array(b * b);
    const minus = new Float64Array(b * b);
    for (let i = 0; i < b * b; i++) {
      const v = q[k * b * b + i];
      const identity = i % (b + 1) === 0 ? 1 : 0;
      plus[i] = identity + v;
      minus[i] = identity - v;
    }
    const inv = invert(minus, b);
    const r = new Float64Array(b * b);
    for (let i = 0; i < b; i++) {
      for (let p = 0; p < b; p++) {
        const x = plus[i * b + p];
        for (let j = 0; j < b; j++) r[i * b + j] += x * inv[p * b + j];
      }
    }
    rotations.push(r);
  }
  return rotations;
}

/** rows[dst…] = M · rows[src…] (or Mᵀ ·) for one group of b rows of width `cols`. */
function rotateGroup(m: Float64Array, b: number, transpose: boolean, src: Float32Array, dst: Float32Array, first: number, cols: number): void {
  const acc = new Float64Array(cols);
  for (let x = 0; x < b; x++) {
    acc.fill(0);
    for (let y = 0; y < b; y++) {
      const f = transpose ? m[y * b + x] : m[x * b + y];
      if (f === 0) continue;
      const row = (first + y) * cols;
      for (let c = 0; c < cols; c++) acc[c] += f * src[row + c];
    }
    dst.set(acc, (first + x) * cols);
  }
}

function rescaleRows(d: ModuleData, w: Float32Array, out: number): void {
  if (!d.has('rescale')) return;
  const r = d.read('rescale');
  const cols = w.length / out;
  for (let o = 0; o < out; o++) for (let c = 0; c < cols; c++) w[o * cols + c] *= r[o];
}

function checkRescale(d: ModuleData, out: number): void {
  if (d.has('rescale') && numel(d.shape('rescale')) !== out) {
    throw new ShapeError(`${d.name}: rescale has ${numel(d.shape('rescale'))} values but the weight has ${out} outputs`);
  }
}

function constraintOf(d: ModuleData, out: number): number {
  return d.has('alpha') ? d.read('alpha')[0] * out : 0;
}

export function oftAdapter(d: ModuleData, target: readonly number[]): WeightAdapter {
  const [count, b, b2] = d.shape('oft_blocks');
  const out = target[0];
  if (b !== b2 || count * b !== out) {
    throw new ShapeError(`${d.name}: oft_blocks [${d.shape('oft_blocks').join(', ')}] do not tile the weight's ${out} outputs`);
  }
  checkRescale(d, out);
  let rotations: Float64Array[] | undefined;
  return {
    kind: 'weight',
    adapt: (w) => {
      rotations ??= cayleyRotations(d.read('oft_blocks'), b, constraintOf(d, out));
      const cols = w.length / out;
      const result = new Float32Array(w.length);
      for (let k = 0; k < count; k++) rotateGroup(rotations[k], b, true, w, result, k * b, cols);
      rescaleRows(d, result, out);
      return result;
    },
  };
}

export function boftAdapter(d: ModuleData, target: readonly number[]): WeightAdapter {
  const [stages, count, b, b2] = d.shape('oft_blocks');
  const out = target[0];
  if (b !== b2 || b % 2 !== 0 || count * b !== out || count % 2 ** (stages - 1) !== 0) {
    throw new ShapeError(`${d.name}: BOFT oft_blocks [${d.shape('oft_blocks').join(', ')}] do not fit the weight's ${out} outputs`);
  }
  checkRescale(d, out);
  let rotations: Float64Array[] | undefined;
  return {
    kind: 'weight',
    adapt: (w) => {
      rotations ??= cayleyRotations(d.read('oft_blocks'), b, constraintOf(d, out));
      const cols = w.length / out;
      let current = Float32Array.from(w);
      const permuted = new Float32Array(w.length);
      const rotated = new Float32Array(w.length);
      for (let stage = 0; stage < stages; stage++) {
        const k = 2 ** stage * (b / 2);
        // Butterfly: row r = c·2k + g·k + t moves to c·2k + 2t + g.
        const to = (r: number) => Math.floor(r / (2 * k)) * 2 * k + 2 * (r % k) + (Math.floor(r / k) % 2);
        for (let r = 0; r < out; r++) permuted.set(current.subarray(r * cols, (r + 1) * cols), to(r) * cols);
        for (let g = 0; g < count; g++) rotateGroup(rotations[stage * count + g], b, false, permuted, rotated, g * b, cols);
        const next = new Float32Array(w.length);
        for (let r = 0; r < out; r++) next.set(rotated.subarray(to(r) * cols, (to(r) + 1) * cols), r * cols);
        current = next;
      }
      rescaleRows(d, current, out);
      return current;
    },
  };
}
