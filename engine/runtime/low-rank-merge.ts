/**
 * W + Σ upᵢ·downᵢ for LoRA factors, computed by onnxruntime (multi-threaded, packed GEMM) rather than in
 * JavaScript: for a rank-32 LoRA on SD1.5's 264 usual targets that is 11 G multiply-adds, seconds in JS
 * and a fraction of a second here — the difference between switching LoRAs within one sampling step or not.
 */
import { Graph, ops } from '../onnx/index.ts';
import { createSession, ort, type SessionOptions } from './session.ts';

export interface ScaledFactors {
  /** [out, r] */
  readonly up: Float32Array;
  /** [r, in·kh·kw] */
  readonly down: Float32Array;
  readonly rank: number;
  /** Multiplies the product (alpha/rank × strength). */
  readonly scale: number;
}

/** The terms' `up` factors side by side: [rows, rank], rank ≥ Σ rankᵢ (the rest zero). */
export function concatUp(terms: readonly { readonly up: Float32Array; readonly rank: number }[], rows: number, rank: number): Float32Array {
  const up = new Float32Array(rows * rank);
  let offset = 0;
  for (const t of terms) {
    for (let i = 0; i < rows; i++) up.set(t.up.subarray(i * t.rank, (i + 1) * t.rank), i * rank + offset);
    offset += t.rank;
  }
  return up;
}

/** The terms' `down` factors stacked, each times its scale: [rank, cols], rank ≥ Σ rankᵢ (the rest zero). */
export function concatScaledDown(
  terms: readonly { readonly down: Float32Array; readonly rank: number }[],
  scales: readonly number[],
  cols: number,
  rank: number,
): Float32Array {
  const down = new Float32Array(rank * cols);
  let offset = 0;
  for (let i = 0; i < terms.length; i++) {
    // Per-step work for scheduled LoRAs (tens of millions of values): keep the inner loop on plain locals.
    const source = terms[i].down;
    const target = down.subarray(offset * cols, (offset + terms[i].rank) * cols);
    const scale = scales[i];
    for (let k = 0; k < target.length; k++) target[k] = source[k] * scale;
    offset += terms[i].rank;
  }
  return down;
}

export class LowRankMerger {
  private session: Promise<ort.InferenceSession> | undefined;

  constructor(private readonly options: SessionOptions = {}) {}

  private get(): Promise<ort.InferenceSession> {
    if (!this.session) {
      const g = new Graph('low-rank-merge');
      const base = g.input('base', 'float32', ['out', 'in']);
      const up = g.input('up', 'float32', ['out', 'rank']);
      const down = g.input('down', 'float32', ['rank', 'in']);
      g.output(ops.add(base, ops.matmul(up, down)), 'merged');
      const created = createSession(g.build(), this.options);
      // A failed creation is not kept: the next merge tries again.
      created.catch(() => {
        if (this.session === created) this.session = undefined;
      });
      this.session = created;
    }
    return this.session;
  }

  async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await (await session?.catch(() => undefined))?.release();
  }

  /** base [out, cols] + Σ scaleᵢ·upᵢ·downᵢ as a new array; the factors of every term are concatenated along rank. */
  async add(base: Float32Array, rows: number, terms: readonly ScaledFactors[]): Promise<Float32Array> {
    const live = terms.filter((t) => t.scale !== 0);
    if (live.length === 0) return base;
    const cols = base.length / rows;
    const rank = live.reduce((r, t) => r + t.rank, 0);
    const up = concatUp(live, rows, rank);
    const down = concatScaledDown(live, live.map((t) => t.scale), cols, rank);
    const session = await this.get();
    const result = await session.run({
      base: new ort.Tensor('float32', base, [rows, cols]),
      up: new ort.Tensor('float32', up, [rows, rank]),
      down: new ort.Tensor('float32', down, [rank, cols]),
    });
    return result.merged.data as Float32Array;
  }
}
