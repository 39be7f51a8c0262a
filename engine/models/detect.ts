/**
 * Infers a checkpoint's family and module structure from tensor names and shapes (canonical names, see
 * checkpoint.ts). Widths and depths come from shapes; head counts, which no weight shape records, come from
 * the family rules below unless a diffusers config states them.
 */
import { ModelLayoutError } from '../errors.ts';
import type { CheckpointConfig, ClipConfig, ModelFamily, UNetConfig, VaeConfig } from './config.ts';

export type ShapeMap = ReadonlyMap<string, readonly number[]>;

/** Settings a diffusers folder's config.json files state outright (they win over the family rules). */
export interface DeclaredConfig {
  unetHeads?: readonly number[];
  clip?: Readonly<Record<string, { heads?: number; activation?: 'quick_gelu' | 'gelu' }>>;
  vaeScalingFactor?: number;
}

/** SD2/SDXL (and CLIP) use 64-wide attention heads; narrow test models scale the head width down with the base width. */
function headWidth(baseWidth: number): number {
  return Math.min(64, Math.max(1, Math.floor(baseWidth / 4)));
}

const SD1_UNET_HEADS = 8;
const SDXL_TIME_ID_DIM = 256;

function count(shapes: ShapeMap, pattern: RegExp): number {
  const seen = new Set<string>();
  for (const key of shapes.keys()) {
    const m = pattern.exec(key);
    if (m) seen.add(m[1]);
  }
  return seen.size;
}

function need(shapes: ShapeMap, key: string): readonly number[] {
  const shape = shapes.get(key);
  if (!shape) throw new ModelLayoutError(`expected tensor ${key} is missing`);
  return shape;
}

export function detectFamily(shapes: ShapeMap): ModelFamily {
  if (shapes.has('te2.text_model.embeddings.token_embedding.weight') || shapes.has('unet.label_emb.0.0.weight')) return 'sdxl';
  const projIn = [...shapes.entries()].find(([k]) => /^unet\..*\.proj_in\.weight$/.test(k));
  if (projIn) return projIn[1].length === 2 ? 'sd2' : 'sd1';
  const te = shapes.get('te.text_model.embeddings.token_embedding.weight');
  if (te) return te[1] === 768 || te[1] < 256 ? 'sd1' : 'sd2';
  return 'sd1';
}

export function detectUNet(shapes: ShapeMap, family: ModelFamily, declared?: DeclaredConfig): UNetConfig {
  const convIn = need(shapes, 'unet.input_blocks.0.0.weight');
  const modelChannels = convIn[0];
  const downsamplers = count(shapes, /^unet\.input_blocks\.(\d+)\.0\.op\.weight$/);
  const levels = downsamplers + 1;
  const firstOp = Math.min(...[...shapes.keys()].map((k) => /^unet\.input_blocks\.(\d+)\.0\.op\.weight$/.exec(k)?.[1]).filter((x) => x !== undefined).map(Number));
  const numResBlocks = levels === 1 ? count(shapes, /^unet\.input_blocks\.(\d+)\.0\.in_layers/) : firstOp - 1;
  if (!(numResBlocks > 0)) throw new ModelLayoutError('cannot find the UNet res blocks (input_blocks.N.0.in_layers)');
  const channelMult: number[] = [];
  const transformerDepth: number[] = [];
  for (let level = 0; level < levels; level++) {
    const block = 1 + level * (numResBlocks + 1);
    const width = need(shapes, `unet.input_blocks.${block}.0.out_layers.3.weight`)[0];
    channelMult.push(width / modelChannels);
    transformerDepth.push(count(shapes, new RegExp(`^unet\\.input_blocks\\.${block}\\.1\\.transformer_blocks\\.(\\d+)\\.`)));
  }
  const transformerDepthMiddle = count(shapes, /^unet\.middle_block\.1\.transformer_blocks\.(\d+)\./);
  const attn2 = [...shapes.entries()].find(([k]) => /^unet\..*\.attn2\.to_k\.weight$/.test(k));
  const projIn = [...shapes.entries()].find(([k]) => /^unet\..*\.proj_in\.weight$/.test(k));
  const widths = channelMult.map((m) => m * modelChannels);
  const middleWidth = widths[levels - 1];
  let heads: number[];
  let headsMiddle: number;
  if (declared?.unetHeads) {
    heads = [...declared.unetHeads];
    headsMiddle = heads[heads.length - 1];
  } else if (family === 'sd1') {
    heads = widths.map(() => SD1_UNET_HEADS);
    headsMiddle = SD1_UNET_HEADS;
  } else {
    const hw = headWidth(modelChannels);
    heads = widths.map((w) => Math.max(1, Math.floor(w / hw)));
    headsMiddle = Math.max(1, Math.floor(middleWidth / hw));
  }
  const labelEmb = shapes.get('unet.label_emb.0.0.weight');
  return {
    inChannels: convIn[1],
    outChannels: need(shapes, 'unet.out.2.weight')[0],
    modelChannels,
    channelMult,
    numResBlocks,
    transformerDepth,
    transformerDepthMiddle,
    heads,
    headsMiddle,
    contextDim: attn2 ? attn2[1][1] : 0,
    linearProjection: projIn ? projIn[1].length === 2 : false,
    admInChannels: labelEmb ? labelEmb[1] : 0,
    timeIdCount: labelEmb ? 6 : 0,
    timeIdDim: 0,
  };
}

export function detectVae(shapes: ShapeMap, family: ModelFamily, declared?: DeclaredConfig): VaeConfig {
  const hasEncoder = shapes.has('vae.encoder.conv_in.weight');
  const side = hasEncoder ? 'encoder' : 'decoder';
  const levels = count(shapes, new RegExp(`^vae\\.${side}\\.${hasEncoder ? 'down' : 'up'}\\.(\\d+)\\.`));
  const blocks = count(shapes, new RegExp(`^vae\\.${side}\\.${hasEncoder ? 'down' : 'up'}\\.0\\.block\\.(\\d+)\\.`));
  const channelMult: number[] = [];
  let baseChannels: number;
  if (hasEncoder) {
    baseChannels = need(shapes, 'vae.encoder.conv_in.weight')[0];
    for (let l = 0; l < levels; l++) channelMult.push(need(shapes, `vae.encoder.down.${l}.block.0.conv2.weight`)[0] / baseChannels);
  } else {
    baseChannels = need(shapes, 'vae.decoder.conv_out.weight')[1];
    for (let l = 0; l < levels; l++) channelMult.push(need(shapes, `vae.decoder.up.${l}.block.0.conv2.weight`)[0] / baseChannels);
  }
  const latentChannels = need(shapes, 'vae.decoder.conv_in.weight')[1];
  return {
    inChannels: hasEncoder ? need(shapes, 'vae.encoder.conv_in.weight')[1] : need(shapes, 'vae.decoder.conv_out.weight')[0],
    outChannels: shapes.get('vae.decoder.conv_out.weight')?.[0] ?? 3,
    latentChannels,
    baseChannels,
    channelMult,
    numResBlocks: hasEncoder ? blocks : blocks - 1,
    scalingFactor: declared?.vaeScalingFactor ?? (family === 'sdxl' ? 0.13025 : 0.18215),
  };
}

export function detectClip(shapes: ShapeMap, prefix: string, family: ModelFamily, declared?: DeclaredConfig): ClipConfig {
  const token = need(shapes, `${prefix}.text_model.embeddings.token_embedding.weight`);
  const width = token[1];
  const projection = shapes.get(`${prefix}.text_projection.weight`);
  const stated = declared?.clip?.[prefix];
  // OpenAI CLIP-L (SD1, SDXL's first encoder) uses quick_gelu; OpenCLIP ViT-H/G (SD2, SDXL's second) exact GELU.
  const openAiClip = family === 'sd1' || prefix === 'te1';
  return {
    vocabSize: token[0],
    width,
    layers: count(shapes, new RegExp(`^${prefix}\\.text_model\\.encoder\\.layers\\.(\\d+)\\.`)),
    heads: stated?.heads ?? Math.max(1, Math.floor(width / headWidth(width))),
    intermediate: need(shapes, `${prefix}.text_model.encoder.layers.0.mlp.fc1.weight`)[0],
    maxPositions: need(shapes, `${prefix}.text_model.embeddings.position_embedding.weight`)[0],
    activation: stated?.activation ?? (openAiClip ? 'quick_gelu' : 'gelu'),
    projectionDim: projection ? projection[0] : 0,
  };
}

/** Everything detectable about the modules present. */
export function detectCheckpoint(shapes: ShapeMap, declared?: DeclaredConfig): Omit<CheckpointConfig, 'prediction'> {
  const family = detectFamily(shapes);
  const hasUnet = shapes.has('unet.input_blocks.0.0.weight');
  const hasVae = shapes.has('vae.decoder.conv_in.weight');
  const encoders = ['te', 'te1', 'te2'].filter((p) => shapes.has(`${p}.text_model.embeddings.token_embedding.weight`));
  if (!hasUnet && !hasVae && encoders.length === 0) {
    const sample = [...shapes.keys()].slice(0, 12).join(', ');
    throw new ModelLayoutError(
      `no Stable Diffusion module found: expected UNet (model.diffusion_model.*), VAE (first_stage_model.*) or ` +
        `text encoder (cond_stage_model.* / conditioner.embedders.*) tensors; found ${shapes.size} tensors such as ${sample}`,
    );
  }
  const clip = encoders.map((p) => detectClip(shapes, p, family, declared));
  let unet = hasUnet ? detectUNet(shapes, family, declared) : undefined;
  if (unet && unet.admInChannels > 0) {
    // SDXL's label_emb input is the pooled text embedding followed by 6 Fourier-embedded size/crop ids.
    const pooled = clip.find((c) => c.projectionDim > 0)?.projectionDim;
    if (pooled !== undefined) unet = { ...unet, timeIdDim: (unet.admInChannels - pooled) / unet.timeIdCount };
    // A lone UNet: SDXL's own 256-wide ids when they fit (2816 = 1280 + 6·256); else left to the caller.
    else if (unet.admInChannels > unet.timeIdCount * SDXL_TIME_ID_DIM) unet = { ...unet, timeIdDim: SDXL_TIME_ID_DIM };
  }
  return { family, unet, vae: hasVae ? detectVae(shapes, family, declared) : undefined, clip };
}
