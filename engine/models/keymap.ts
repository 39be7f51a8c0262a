/**
 * Name maps between the original single-file layout (LDM/SGM: `input_blocks.4.1…`) and diffusers /
 * transformers module paths (`down_blocks.1.attentions.0…`), for the UNet, the VAE and the text encoders.
 * They work on module paths (no `.weight`/`.bias` suffix needed: suffixes pass through unchanged) and are
 * driven by the UNet's structure, never by fixed block numbers.
 */
import type { UNetConfig } from './config.ts';

/** The few structural facts the UNet name map needs. */
export interface UNetLayout {
  /** Number of resolution levels. */
  readonly levels: number;
  readonly numResBlocks: number;
  /** Whether each (down) level has attention; up level i mirrors down level levels-1-i. */
  readonly attention: readonly boolean[];
}

/** The name-map layout of a detected UNet. */
export function unetLayout(config: UNetConfig): UNetLayout {
  return {
    levels: config.channelMult.length,
    numResBlocks: config.numResBlocks,
    attention: config.transformerDepth.map((depth) => depth > 0),
  };
}

const RESNET_TO_LDM: Record<string, string> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  time_emb_proj: 'emb_layers.1',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  conv_shortcut: 'skip_connection',
};
const RESNET_TO_DIFFUSERS = Object.fromEntries(Object.entries(RESNET_TO_LDM).map(([a, b]) => [b, a]));

const UNET_TOP_TO_LDM: Record<string, string> = {
  conv_in: 'input_blocks.0.0',
  'time_embedding.linear_1': 'time_embed.0',
  'time_embedding.linear_2': 'time_embed.2',
  'add_embedding.linear_1': 'label_emb.0.0',
  'add_embedding.linear_2': 'label_emb.0.2',
  conv_norm_out: 'out.0',
  conv_out: 'out.2',
};
const UNET_TOP_TO_DIFFUSERS = Object.fromEntries(Object.entries(UNET_TOP_TO_LDM).map(([a, b]) => [b, a]));

function renameResnetInner(rest: string, table: Record<string, string>): string | undefined {
  for (const [from, to] of Object.entries(table)) {
    if (rest === from || rest.startsWith(`${from}.`)) return to + rest.slice(from.length);
  }
  return undefined;
}

function replacePrefix(path: string, table: Record<string, string>): string | undefined {
  for (const [from, to] of Object.entries(table)) {
    if (path === from || path.startsWith(`${from}.`)) return to + path.slice(from.length);
  }
  return undefined;
}

/** diffusers UNet path → LDM path (both without the `model.diffusion_model.` prefix), or undefined. */
export function unetDiffusersToLdm(path: string, layout: UNetLayout): string | undefined {
  const top = replacePrefix(path, UNET_TOP_TO_LDM);
  if (top) return top;
  const R = layout.numResBlocks;
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [level, kind, j] = [Number(m[1]), m[2], Number(m[3])];
    if (level >= layout.levels || j >= R) return undefined;
    const block = `input_blocks.${1 + level * (R + 1) + j}`;
    if (kind === 'attentions') return layout.attention[level] ? join(`${block}.1`, m[4]) : undefined;
    return resnetToLdm(`${block}.0`, m[4]);
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv(?:\.(.*))?$/.exec(path);
  if (m) {
    const level = Number(m[1]);
    return level < layout.levels - 1 ? join(`input_blocks.${(level + 1) * (R + 1)}.0.op`, m[2]) : undefined;
  }
  m = /^mid_block\.(resnets|attentions)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    if (m[1] === 'attentions') return m[2] === '0' ? join('middle_block.1', m[3]) : undefined;
    return m[2] === '0' || m[2] === '1' ? resnetToLdm(`middle_block.${Number(m[2]) * 2}`, m[3]) : undefined;
  }
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [level, kind, j] = [Number(m[1]), m[2], Number(m[3])];
    if (level >= layout.levels || j > R) return undefined;
    const block = `output_blocks.${level * (R + 1) + j}`;
    if (kind === 'attentions') return layout.attention[layout.levels - 1 - level] ? join(`${block}.1`, m[4]) : undefined;
    return resnetToLdm(`${block}.0`, m[4]);
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv(?:\.(.*))?$/.exec(path);
  if (m) {
    const level = Number(m[1]);
    if (level >= layout.levels - 1) return undefined;
    const sub = layout.attention[layout.levels - 1 - level] ? 2 : 1;
    return join(`output_blocks.${level * (R + 1) + R}.${sub}.conv`, m[2]);
  }
  return undefined;
}

/** LDM UNet path → diffusers path, or undefined. */
export function unetLdmToDiffusers(path: string, layout: UNetLayout): string | undefined {
  const top = replacePrefix(path, UNET_TOP_TO_DIFFUSERS);
  if (top) return top;
  const R = layout.numResBlocks;
  let m = /^input_blocks\.(\d+)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [n, sub, rest] = [Number(m[1]), Number(m[2]), m[3]];
    if (n === 0) return undefined;
    const level = Math.floor((n - 1) / (R + 1));
    const j = (n - 1) % (R + 1);
    if (level >= layout.levels) return undefined;
    if (j === R) {
      // The last index of a level holds its downsampler.
      return sub === 0 && rest !== undefined && (rest === 'op' || rest.startsWith('op.'))
        ? join(`down_blocks.${level}.downsamplers.0.conv`, rest.slice(2).replace(/^\./, '') || undefined)
        : undefined;
    }
    if (sub === 0) return resnetToDiffusers(`down_blocks.${level}.resnets.${j}`, rest);
    return sub === 1 && layout.attention[level] ? join(`down_blocks.${level}.attentions.${j}`, rest) : undefined;
  }
  m = /^middle_block\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [n, rest] = [Number(m[1]), m[2]];
    if (n === 1) return join('mid_block.attentions.0', rest);
    return n === 0 || n === 2 ? resnetToDiffusers(`mid_block.resnets.${n / 2}`, rest) : undefined;
  }
  m = /^output_blocks\.(\d+)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [n, sub, rest] = [Number(m[1]), Number(m[2]), m[3]];
    const level = Math.floor(n / (R + 1));
    const j = n % (R + 1);
    if (level >= layout.levels) return undefined;
    const hasAttention = layout.attention[layout.levels - 1 - level];
    if (sub === 0) return resnetToDiffusers(`up_blocks.${level}.resnets.${j}`, rest);
    const upsamplerSub = hasAttention ? 2 : 1;
    if (sub === upsamplerSub && j === R && level < layout.levels - 1 && rest !== undefined && (rest === 'conv' || rest.startsWith('conv.'))) {
      return join(`up_blocks.${level}.upsamplers.0.conv`, rest.slice(4).replace(/^\./, '') || undefined);
    }
    return sub === 1 && hasAttention ? join(`up_blocks.${level}.attentions.${j}`, rest) : undefined;
  }
  return undefined;
}

function join(prefix: string, rest: string | undefined): string {
  return rest ? `${prefix}.${rest}` : prefix;
}

function resnetToLdm(prefix: string, rest: string | undefined): string | undefined {
  if (!rest) return prefix;
  const inner = renameResnetInner(rest, RESNET_TO_LDM);
  return inner ? `${prefix}.${inner}` : undefined;
}

function resnetToDiffusers(prefix: string, rest: string | undefined): string | undefined {
  if (!rest) return prefix;
  const inner = renameResnetInner(rest, RESNET_TO_DIFFUSERS);
  return inner ? `${prefix}.${inner}` : undefined;
}

/** diffusers AutoencoderKL path → LDM first_stage_model path (without prefix), or undefined. */
export function vaeDiffusersToLdm(path: string, levels: number): string | undefined {
  const resnet = (rest: string | undefined) => (rest ? rest.replace(/^conv_shortcut/, 'nin_shortcut') : rest);
  let m = /^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [side, dir, i, kind, j, rest] = [m[1], m[2], Number(m[3]), m[4], Number(m[5]), m[6]];
    // The LDM decoder numbers its up levels from the lowest resolution upwards; diffusers the other way.
    const level = dir === 'up' ? levels - 1 - i : i;
    const ldmDir = dir === 'up' ? 'up' : 'down';
    if (kind === 'resnets') return join(`${side}.${ldmDir}.${level}.block.${j}`, resnet(rest));
    return join(`${side}.${ldmDir}.${level}.${kind === 'downsamplers' ? 'downsample' : 'upsample'}`, rest);
  }
  m = /^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)(?:\.(.*))?$/.exec(path);
  if (m) {
    const [side, kind, j, rest] = [m[1], m[2], Number(m[3]), m[4]];
    if (kind === 'resnets') return join(`${side}.mid.block_${j + 1}`, resnet(rest));
    const attn = rest
      ?.replace(/^group_norm/, 'norm')
      .replace(/^(to_q|query)/, 'q')
      .replace(/^(to_k|key)/, 'k')
      .replace(/^(to_v|value)/, 'v')
      .replace(/^(to_out\.0|proj_attn)/, 'proj_out');
    return join(`${side}.mid.attn_1`, attn);
  }
  const renamed = path.replace(/^(encoder|decoder)\.conv_norm_out/, '$1.norm_out');
  return /^(encoder|decoder)\.(conv_in|conv_out|norm_out)|^(quant_conv|post_quant_conv)/.test(renamed) ? renamed : undefined;
}

/**
 * OpenCLIP text-tower tensor name (inside `…model.`) → transformers CLIPTextModel tensor name. A fused
 * `attn.in_proj_weight|bias` (q, k and v stacked on dim 0) maps to the three `self_attn.{q,k,v}_proj` names,
 * in that order.
 */
export function openClipToHf(path: string): { path: string } | { fusedQkv: readonly [string, string, string] } | undefined {
  const simple: Record<string, string> = {
    'token_embedding.weight': 'text_model.embeddings.token_embedding.weight',
    positional_embedding: 'text_model.embeddings.position_embedding.weight',
    'ln_final.weight': 'text_model.final_layer_norm.weight',
    'ln_final.bias': 'text_model.final_layer_norm.bias',
    text_projection: 'text_projection.weight',
  };
  if (simple[path]) return { path: simple[path] };
  const m = /^transformer\.resblocks\.(\d+)\.(.*)$/.exec(path);
  if (!m) return undefined;
  const layer = `text_model.encoder.layers.${m[1]}`;
  const inner: Record<string, string> = {
    'ln_1': 'layer_norm1',
    'ln_2': 'layer_norm2',
    'attn.out_proj': 'self_attn.out_proj',
    'mlp.c_fc': 'mlp.fc1',
    'mlp.c_proj': 'mlp.fc2',
  };
  const fused = /^attn\.in_proj_(weight|bias)$/.exec(m[2]);
  if (fused) {
    const name = (p: string) => `${layer}.self_attn.${p}_proj.${fused[1]}`;
    return { fusedQkv: [name('q'), name('k'), name('v')] };
  }
  const mapped = replacePrefix(m[2], inner);
  return mapped ? { path: `${layer}.${mapped}` } : undefined;
}
