/**
 * Writes SD1.x-structured checkpoints with random weights in the original single-file layout: the embedded
 * tiny model (tests, first run) and a full-size SD1.5-shaped model (benchmarks). The tensor list follows
 * LDM's own channel bookkeeping, so every loader and graph path a real checkpoint takes is exercised.
 * Deterministic: the same spec and seed give the same bytes.
 */
import { writeSafetensors, type TensorEntry } from '../safetensors/index.ts';
import { fromFloat32, type DType } from '../tensor/dtype.ts';

export interface Sd1Spec {
  readonly unet: {
    readonly modelChannels: number;
    readonly channelMult: readonly number[];
    readonly numResBlocks: number;
    readonly attention: readonly boolean[];
    readonly contextDim: number;
  };
  readonly vae: { readonly baseChannels: number; readonly channelMult: readonly number[]; readonly numResBlocks: number; readonly latentChannels: number };
  readonly clip: { readonly width: number; readonly layers: number; readonly intermediate: number; readonly vocabSize: number; readonly positions: number };
}

/** The real SD1.5 shapes (860M UNet, 123M CLIP-L, 84M VAE parameters). */
export const SD15_SPEC: Sd1Spec = {
  unet: { modelChannels: 320, channelMult: [1, 2, 4, 4], numResBlocks: 2, attention: [true, true, true, false], contextDim: 768 },
  vae: { baseChannels: 128, channelMult: [1, 2, 4, 4], numResBlocks: 2, latentChannels: 4 },
  clip: { width: 768, layers: 12, intermediate: 3072, vocabSize: 49408, positions: 77 },
};

type Init = 'weight' | 'bias' | 'norm' | 'embedding';
interface Planned {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
}

class Planner {
  readonly tensors: Planned[] = [];
  add(name: string, shape: readonly number[], init: Init): void {
    this.tensors.push({ name, shape, init });
  }
  linear(p: string, out: number, inp: number, bias = true): void {
    this.add(`${p}.weight`, [out, inp], 'weight');
    if (bias) this.add(`${p}.bias`, [out], 'bias');
  }
  conv(p: string, out: number, inp: number, k: number): void {
    this.add(`${p}.weight`, [out, inp, k, k], 'weight');
    this.add(`${p}.bias`, [out], 'bias');
  }
  norm(p: string, channels: number): void {
    this.add(`${p}.weight`, [channels], 'norm');
    this.add(`${p}.bias`, [channels], 'bias');
  }
}

function planUNet(t: Planner, u: Sd1Spec['unet']): void {
  const P = 'model.diffusion_model';
  const C = u.modelChannels;
  const emb = 4 * C;
  t.linear(`${P}.time_embed.0`, emb, C);
  t.linear(`${P}.time_embed.2`, emb, emb);
  t.conv(`${P}.input_blocks.0.0`, C, 4, 3);
  const res = (p: string, inp: number, out: number) => {
    t.norm(`${p}.in_layers.0`, inp);
    t.conv(`${p}.in_layers.2`, out, inp, 3);
    t.linear(`${p}.emb_layers.1`, out, emb);
    t.norm(`${p}.out_layers.0`, out);
    t.conv(`${p}.out_layers.3`, out, out, 3);
    if (inp !== out) t.conv(`${p}.skip_connection`, out, inp, 1);
  };
  const transformer = (p: string, ch: number) => {
    t.norm(`${p}.norm`, ch);
    t.conv(`${p}.proj_in`, ch, ch, 1);
    const b = `${p}.transformer_blocks.0`;
    for (const a of ['attn1', 'attn2']) {
      const kv = a === 'attn1' ? ch : u.contextDim;
      t.linear(`${b}.${a}.to_q`, ch, ch, false);
      t.linear(`${b}.${a}.to_k`, ch, kv, false);
      t.linear(`${b}.${a}.to_v`, ch, kv, false);
      t.linear(`${b}.${a}.to_out.0`, ch, ch);
    }
    t.linear(`${b}.ff.net.0.proj`, 8 * ch, ch);
    t.linear(`${b}.ff.net.2`, ch, 4 * ch);
    for (const n of ['norm1', 'norm2', 'norm3']) t.norm(`${b}.${n}`, ch);
    t.conv(`${p}.proj_out`, ch, ch, 1);
  };
  const skipChannels = [C];
  let ch = C;
  let index = 1;
  u.channelMult.forEach((mult, level) => {
    for (let j = 0; j < u.numResBlocks; j++, index++) {
      res(`${P}.input_blocks.${index}.0`, ch, mult * C);
      ch = mult * C;
      if (u.attention[level]) transformer(`${P}.input_blocks.${index}.1`, ch);
      skipChannels.push(ch);
    }
    if (level < u.channelMult.length - 1) {
      t.conv(`${P}.input_blocks.${index}.0.op`, ch, ch, 3);
      skipChannels.push(ch);
      index++;
    }
  });
  res(`${P}.middle_block.0`, ch, ch);
  transformer(`${P}.middle_block.1`, ch);
  res(`${P}.middle_block.2`, ch, ch);
  index = 0;
  for (let level = u.channelMult.length - 1; level >= 0; level--) {
    for (let j = 0; j <= u.numResBlocks; j++, index++) {
      const out = u.channelMult[level] * C;
      res(`${P}.output_blocks.${index}.0`, ch + skipChannels.pop()!, out);
      ch = out;
      if (u.attention[level]) transformer(`${P}.output_blocks.${index}.1`, ch);
      if (level > 0 && j === u.numResBlocks) t.conv(`${P}.output_blocks.${index}.${u.attention[level] ? 2 : 1}.conv`, ch, ch, 3);
    }
  }
  t.norm(`${P}.out.0`, ch);
  t.conv(`${P}.out.2`, 4, ch, 3);
}

function planVae(t: Planner, v: Sd1Spec['vae']): void {
  const P = 'first_stage_model';
  const widths = v.channelMult.map((m) => m * v.baseChannels);
  const res = (p: string, inp: number, out: number) => {
    t.norm(`${p}.norm1`, inp);
    t.conv(`${p}.conv1`, out, inp, 3);
    t.norm(`${p}.norm2`, out);
    t.conv(`${p}.conv2`, out, out, 3);
    if (inp !== out) t.conv(`${p}.nin_shortcut`, out, inp, 1);
  };
  const mid = (p: string, ch: number) => {
    res(`${p}.mid.block_1`, ch, ch);
    t.norm(`${p}.mid.attn_1.norm`, ch);
    for (const n of ['q', 'k', 'v', 'proj_out']) t.conv(`${p}.mid.attn_1.${n}`, ch, ch, 1);
    res(`${p}.mid.block_2`, ch, ch);
  };
  const z = v.latentChannels;
  t.conv(`${P}.encoder.conv_in`, v.baseChannels, 3, 3);
  let ch = v.baseChannels;
  widths.forEach((w, level) => {
    for (let j = 0; j < v.numResBlocks; j++) {
      res(`${P}.encoder.down.${level}.block.${j}`, ch, w);
      ch = w;
    }
    if (level < widths.length - 1) t.conv(`${P}.encoder.down.${level}.downsample.conv`, ch, ch, 3);
  });
  mid(`${P}.encoder`, ch);
  t.norm(`${P}.encoder.norm_out`, ch);
  t.conv(`${P}.encoder.conv_out`, 2 * z, ch, 3);
  t.conv(`${P}.quant_conv`, 2 * z, 2 * z, 1);
  t.conv(`${P}.post_quant_conv`, z, z, 1);
  ch = widths[widths.length - 1];
  t.conv(`${P}.decoder.conv_in`, ch, z, 3);
  mid(`${P}.decoder`, ch);
  for (let level = widths.length - 1; level >= 0; level--) {
    for (let j = 0; j <= v.numResBlocks; j++) {
      res(`${P}.decoder.up.${level}.block.${j}`, ch, widths[level]);
      ch = widths[level];
    }
    if (level > 0) t.conv(`${P}.decoder.up.${level}.upsample.conv`, ch, ch, 3);
  }
  t.norm(`${P}.decoder.norm_out`, ch);
  t.conv(`${P}.decoder.conv_out`, 3, ch, 3);
}

function planClip(t: Planner, c: Sd1Spec['clip']): void {
  const P = 'cond_stage_model.transformer.text_model';
  t.add(`${P}.embeddings.token_embedding.weight`, [c.vocabSize, c.width], 'embedding');
  t.add(`${P}.embeddings.position_embedding.weight`, [c.positions, c.width], 'embedding');
  for (let i = 0; i < c.layers; i++) {
    const l = `${P}.encoder.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.linear(`${l}.self_attn.${n}`, c.width, c.width);
    t.norm(`${l}.layer_norm1`, c.width);
    t.norm(`${l}.layer_norm2`, c.width);
    t.linear(`${l}.mlp.fc1`, c.intermediate, c.width);
    t.linear(`${l}.mlp.fc2`, c.width, c.intermediate);
  }
  t.norm(`${P}.final_layer_norm`, c.width);
}

/** xoshiro128**: fast, seedable, good enough for random weights. */
function rng(seed: number): () => number {
  let a = seed >>> 0 || 1;
  let b = 0x9e3779b9;
  let c = 0x243f6a88;
  let d = 0xb7e15162;
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r / 4294967296;
  };
}
const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** PyTorch-like default init: uniform ±1/√fan_in for weights, small biases, norms near 1. */
function fill(p: Planned, next: () => number): Float32Array {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
  const [center, spread] =
    p.init === 'weight' ? [0, 1 / Math.sqrt(fanIn)] : p.init === 'norm' ? [1, 0.1] : p.init === 'embedding' ? [0, 0.05] : [0, 0.02];
  for (let i = 0; i < n; i++) out[i] = center + (2 * next() - 1) * spread;
  return out;
}

export function planSd1Tensors(spec: Sd1Spec): readonly Planned[] {
  const t = new Planner();
  planUNet(t, spec.unet);
  planVae(t, spec.vae);
  planClip(t, spec.clip);
  return t.tensors;
}

/** Writes a random-weight SD1.x checkpoint; tensors are generated one at a time as they are written. */
export function writeRandomSd1Checkpoint(path: string, spec: Sd1Spec, options: { seed: number; dtype?: DType; metadata?: Record<string, string> }): void {
  const dtype = options.dtype ?? 'F32';
  const next = rng(options.seed);
  const entries: TensorEntry[] = planSd1Tensors(spec).map((p) => ({
    name: p.name,
    dtype,
    shape: p.shape,
    data: () => fromFloat32(fill(p, next), dtype),
  }));
  writeSafetensors(path, entries, { 'modelspec.architecture': 'stable-diffusion-v1', ...options.metadata });
}
