/**
 * Multiply-adds of one UNet evaluation, counted from its structure, split into convolutions and matrix
 * products (their CPU throughputs differ), for the "step vs FLOP floor" figure.
 */
import type { UNetConfig } from '../engine/models/config.ts';

export interface Macs {
  conv: number;
  matmul: number;
}

export function unetMacs(c: UNetConfig, batch: number, height: number, width: number, contextTokens: number): Macs {
  const m: Macs = { conv: 0, matmul: 0 };
  const conv = (hw: number, cout: number, cin: number, k: number) => (m.conv += batch * hw * cout * cin * k * k);
  const linear = (rows: number, inp: number, out: number) => (m.matmul += batch * rows * inp * out);
  const emb = 4 * c.modelChannels;
  linear(1, c.modelChannels, emb);
  linear(1, emb, emb);
  const res = (hw: number, inp: number, out: number) => {
    conv(hw, out, inp, 3);
    linear(1, emb, out);
    conv(hw, out, out, 3);
    if (inp !== out) conv(hw, out, inp, 1);
  };
  const transformer = (hw: number, ch: number, depth: number) => {
    linear(hw, ch, ch); // proj_in (1x1 conv or linear: the same work)
    for (let i = 0; i < depth; i++) {
      linear(hw, ch, 3 * ch); // self-attention q, k, v
      m.matmul += batch * 2 * hw * hw * ch; // scores and weighted sum
      linear(hw, ch, ch); // out
      linear(hw, ch, ch); // cross-attention q
      linear(contextTokens, c.contextDim, 2 * ch); // k, v from the context
      m.matmul += batch * 2 * hw * contextTokens * ch;
      linear(hw, ch, ch);
      linear(hw, ch, 8 * ch); // GEGLU
      linear(hw, 4 * ch, ch);
    }
    linear(hw, ch, ch); // proj_out
  };
  let h = height;
  let w = width;
  let ch = c.modelChannels;
  conv(h * w, ch, c.inChannels, 3);
  const skips = [ch];
  c.channelMult.forEach((mult, level) => {
    for (let j = 0; j < c.numResBlocks; j++) {
      res(h * w, ch, mult * c.modelChannels);
      ch = mult * c.modelChannels;
      if (c.transformerDepth[level]) transformer(h * w, ch, c.transformerDepth[level]);
      skips.push(ch);
    }
    if (level < c.channelMult.length - 1) {
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
      conv(h * w, ch, ch, 3);
      skips.push(ch);
    }
  });
  res(h * w, ch, ch);
  transformer(h * w, ch, c.transformerDepthMiddle);
  res(h * w, ch, ch);
  for (let level = c.channelMult.length - 1; level >= 0; level--) {
    for (let j = 0; j <= c.numResBlocks; j++) {
      const out = c.channelMult[level] * c.modelChannels;
      res(h * w, ch + skips.pop()!, out);
      ch = out;
      if (c.transformerDepth[level]) transformer(h * w, ch, c.transformerDepth[level]);
      if (level > 0 && j === c.numResBlocks) {
        h *= 2;
        w *= 2;
        conv(h * w, ch, ch, 3);
      }
    }
  }
  conv(h * w, c.outChannels, ch, 3);
  return m;
}

/** Throughputs measured on this 2-core machine (shared/DESIGN.md): MatMul 276, 3x3 Conv 341 GFLOP/s. */
export const PEAK_GFLOPS = { matmul: 276, conv: 341 };

export function floorSeconds(m: Macs): number {
  return (2 * m.matmul) / (PEAK_GFLOPS.matmul * 1e9) + (2 * m.conv) / (PEAK_GFLOPS.conv * 1e9);
}
