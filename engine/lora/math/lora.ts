/**
 * LoRA and LoCon (lycoris_math.md §1): ΔW = (alpha/r) · up · down, the down factor carrying the conv kernel,
 * or with a Tucker core: ΔW[o,c,h,w] = (alpha/r) · Σ_a Σ_b up[o,a] · mid[a,b,h,w] · down[b,c].
 */
import { foldTuckerCore, matmul, trailing } from '../linalg.ts';
import { expectMatrix, scaled, ShapeError, type AdditiveAdapter, type LowRank, type ModuleData } from './adapter.ts';

export function loraAdapter(d: ModuleData, target: readonly number[]): AdditiveAdapter {
  const up = d.shape('up');
  const down = d.shape('down');
  const rank = down[0];
  const out = up[0];
  const upRank = trailing(up);
  let cols = trailing(down);
  if (d.has('mid')) {
    const mid = d.shape('mid');
    if (mid[0] !== upRank || mid[1] !== rank) {
      throw new ShapeError(`${d.name}: lora_mid is [${mid.join(', ')}], expected [${upRank}, ${rank}, kh, kw]`);
    }
    cols *= trailing(mid) / mid[1];
  } else if (upRank !== rank) {
    throw new ShapeError(`${d.name}: lora_up is [${up.join(', ')}] but lora_down has rank ${rank}`);
  }
  expectMatrix(d.name, out, cols, target);
  const factors = (): LowRank => {
    const downFlat = d.has('mid') ? foldTuckerCore(d.read('mid'), d.shape('mid'), d.read('down'), trailing(down)) : d.read('down');
    return { up: d.read('up'), down: downFlat, rank: upRank, scale: d.scale(rank) };
  };
  return {
    kind: 'additive',
    delta: () => {
      const f = factors();
      return scaled(matmul(f.up, out, f.rank, f.down, cols), f.scale);
    },
    lowRank: factors,
  };
}
