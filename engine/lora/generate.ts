/**
 * Generates kohya-format LoRAs with random weights for a checkpoint (benchmarks and tests): rank-r factors on the usual kohya targets (text encoder
 * attention/MLP, UNet transformer linears and projections) and, for LoCon, the ResBlock convolutions,
 * time-embedding projections, shortcuts and resamplers too. Random small values, deterministic by seed.
 */
import { writeSafetensors, type TensorEntry } from '../safetensors/index.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import { unetLayout, unetLdmToDiffusers } from '../models/keymap.ts';

const UNET_LINEAR = /\.(attn[12]\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2)|proj_in|proj_out)\.weight$/;
const UNET_CONV = /\.(in_layers\.2|out_layers\.3|emb_layers\.1|skip_connection|op|conv)\.weight$/;
const TE = /^te\.text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$/;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
}

export function writeKohyaLora(ckpt: Checkpoint, path: string, options: { rank: number; seed: number; locon?: boolean; scale?: number }): number {
  const layout = unetLayout(ckpt.config.unet!);
  const next = rng(options.seed);
  const entries: TensorEntry[] = [];
  let modules = 0;
  for (const name of ckpt.weights.keys()) {
    let kohya: string | undefined;
    if (TE.test(name)) kohya = `lora_te_${name.slice('te.'.length, -'.weight'.length).replaceAll('.', '_')}`;
    else if (name.startsWith('unet.') && (UNET_LINEAR.test(name) || (options.locon && UNET_CONV.test(name)))) {
      const diffusers = unetLdmToDiffusers(name.slice('unet.'.length, -'.weight'.length), layout);
      if (diffusers) kohya = `lora_unet_${diffusers.replaceAll('.', '_')}`;
    }
    if (!kohya) continue;
    const shape = ckpt.weight(name).shape;
    const r = Math.min(options.rank, shape[0], shape[1]);
    const downShape = shape.length === 4 ? [r, shape[1], shape[2], shape[3]] : [r, shape[1]];
    const upShape = shape.length === 4 ? [shape[0], r, 1, 1] : [shape[0], r];
    const fill = (shape: number[], amp: number) => {
      const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
      for (let i = 0; i < a.length; i++) a[i] = next() * amp;
      return new Uint8Array(a.buffer);
    };
    const amp = options.scale ?? 0.02;
    entries.push({ name: `${kohya}.lora_down.weight`, dtype: 'F32', shape: downShape, data: () => fill(downShape, amp) });
    entries.push({ name: `${kohya}.lora_up.weight`, dtype: 'F32', shape: upShape, data: () => fill(upShape, amp) });
    entries.push({ name: `${kohya}.alpha`, dtype: 'F32', shape: [], data: new Uint8Array(Float32Array.of(r / 2).buffer) });
    modules++;
  }
  writeSafetensors(path, entries, {
    ss_network_module: options.locon ? 'lycoris.kohya' : 'networks.lora',
    ss_network_dim: String(options.rank),
    ss_network_alpha: String(options.rank / 2),
    ss_base_model_version: 'sd_v1',
    ss_tag_frequency: JSON.stringify({ [`10_bench${options.seed}`]: { [`bench${options.seed}`]: 1 } }),
  });
  return modules;
}
