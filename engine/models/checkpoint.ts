/**
 * Opens a checkpoint the way users have it — one original-layout .safetensors file, a diffusers folder, or
 * a single module (a UNet/VAE/text-encoder file or folder) — and presents every weight under one canonical
 * name:
 *   unet.<LDM path>   e.g. unet.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight
 *   vae.<LDM path>    e.g. vae.decoder.mid.attn_1.q.weight
 *   te. / te1. / te2. <transformers CLIPTextModel path>, e.g. te2.text_model.encoder.layers.0.self_attn.q_proj.weight
 * Weights stay on disk (WeightRef) until a graph or a LoRA needs them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { FileFormatError, ModelLayoutError, NotFoundError } from '../errors.ts';
import { SafetensorsFile } from '../safetensors/index.ts';
import { readWeight, refFromFile, rowSlice, transposedRef, type WeightRef } from './weights.ts';
import type { CheckpointConfig, Prediction } from './config.ts';
import { detectCheckpoint, type DeclaredConfig } from './detect.ts';
import { openClipToHf, unetDiffusersToLdm, vaeDiffusersToLdm, type UNetLayout } from './keymap.ts';

export type CheckpointLayout = 'single-file' | 'diffusers';

export class Checkpoint {
  constructor(
    readonly path: string,
    readonly layout: CheckpointLayout,
    readonly config: CheckpointConfig,
    readonly weights: ReadonlyMap<string, WeightRef>,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly files: readonly SafetensorsFile[],
  ) {}

  has(name: string): boolean {
    return this.weights.has(name);
  }

  weight(name: string): WeightRef {
    const ref = this.weights.get(name);
    if (!ref) throw new ModelLayoutError(`${this.path}: the checkpoint has no weight ${name}`);
    return ref;
  }

  /** Canonical names under a prefix (`unet.`, `vae.`, `te.`, `te1.`, `te2.`). */
  names(prefix: string): string[] {
    return [...this.weights.keys()].filter((k) => k.startsWith(prefix));
  }

  /** Total bytes of the weights under a prefix as stored on disk. */
  storedBytes(prefix = ''): number {
    let n = 0;
    for (const [k, ref] of this.weights) if (k.startsWith(prefix)) n += ref.byteLength;
    return n;
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

const REFUSED_EXTENSIONS = new Set(['.ckpt', '.pt', '.pth', '.bin']);

export function openCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new NotFoundError(`checkpoint ${path} does not exist`);
  if (statSync(path).isDirectory()) return openFolder(path);
  if (REFUSED_EXTENSIONS.has(extname(path).toLowerCase())) {
    throw new FileFormatError(
      path,
      'is a PyTorch pickle file. Pickles can run arbitrary code when loaded, so only .safetensors checkpoints are ' +
        'read; convert it once with a trusted tool and load the .safetensors file',
      'pickle_refused',
    );
  }
  const file = SafetensorsFile.open(path);
  try {
    const weights = new Map<string, WeightRef>();
    // A diffusers component file (unet/diffusion_pytorch_model.safetensors) may sit beside its config.json;
    // an original-layout checkpoint never takes one (a stray config.json in the checkpoints folder must not
    // change how every checkpoint there is read).
    const byKeys = guessComponent(file);
    const sidecar = join(path, '..', 'config.json');
    const declared = byKeys !== 'ldm' && existsSync(sidecar) ? declaredFromComponentConfig(sidecar) : undefined;
    mapFile(file, weights, declared?.component ?? byKeys);
    return finish(path, 'single-file', weights, file.metadata, [file], declared ?? {});
  } catch (err) {
    file.close();
    throw err;
  }
}

type Component = 'ldm' | 'unet' | 'vae' | 'te' | 'te2';

/** What a lone file holds, judged by its key names. */
function guessComponent(file: SafetensorsFile): Component {
  const keys = file.keys();
  const has = (re: RegExp) => keys.some((k) => re.test(k));
  if (has(/^(model\.diffusion_model|first_stage_model|cond_stage_model|conditioner)\./)) return 'ldm';
  if (has(/^(input_blocks|middle_block|output_blocks)\./)) return 'ldm';
  if (has(/^(down_blocks|mid_block|up_blocks)\.\d+\.(resnets|attentions)/) && has(/^time_embedding\./)) return 'unet';
  if (has(/^(encoder|decoder)\.(down|up)_blocks\./)) return 'vae';
  if (has(/^text_model\./)) return 'te';
  throw new ModelLayoutError(
    `${file.path}: unknown layout: no original-layout (model.diffusion_model.*, first_stage_model.*, ` +
      `cond_stage_model.*, conditioner.*) or diffusers (down_blocks.*, encoder.*, text_model.*) tensors; ` +
      `found ${keys.length} tensors such as ${keys.slice(0, 8).join(', ')}`,
  );
}

/** Original single-file prefixes → canonical prefixes (UNet-only files may have bare LDM names). */
const LDM_PREFIXES: readonly [RegExp, string][] = [
  [/^(?:model\.diffusion_model\.)?((?:input_blocks|middle_block|output_blocks|time_embed|label_emb|out)\..*)$/, 'unet.'],
  [/^first_stage_model\.(.*)$/, 'vae.'],
  [/^cond_stage_model\.transformer\.(?:text_model\.)?(.*)$/, 'te.text_model.'],
  [/^conditioner\.embedders\.0\.transformer\.(?:text_model\.)?(.*)$/, 'te1.text_model.'],
];
/** OpenCLIP text towers (SD2's only encoder, SDXL's second), renamed to transformers names below. */
const OPENCLIP_PREFIXES: readonly [RegExp, string][] = [
  [/^cond_stage_model\.model\.(.*)$/, 'te'],
  [/^conditioner\.embedders\.1\.model\.(.*)$/, 'te2'],
];

/** Adds every tensor of `file` to `weights` under its canonical name. */
function mapFile(file: SafetensorsFile, weights: Map<string, WeightRef>, component: Component): void {
  const keys = file.keys();
  const put = (name: string, ref: WeightRef) => weights.set(name, ref);
  if (component === 'unet') {
    const layout = unetLayoutFromDiffusersKeys(keys);
    for (const key of keys) {
      const ldm = unetDiffusersToLdm(key, layout);
      if (ldm) put(`unet.${ldm}`, refFromFile(file, key));
    }
    return;
  }
  if (component === 'vae') {
    const levels = new Set(keys.map((k) => /^encoder\.down_blocks\.(\d+)\./.exec(k)?.[1]).filter(Boolean)).size ||
      new Set(keys.map((k) => /^decoder\.up_blocks\.(\d+)\./.exec(k)?.[1]).filter(Boolean)).size;
    for (const key of keys) {
      const ldm = vaeDiffusersToLdm(key, levels);
      if (ldm) put(`vae.${ldm}`, refFromFile(file, key));
    }
    return;
  }
  if (component === 'te' || component === 'te2') {
    for (const key of keys) if (/^(text_model|text_projection)\./.test(key)) put(`${component}.${key}`, refFromFile(file, key));
    return;
  }
  const openClip: [string, string, string][] = [];
  for (const key of keys) {
    const ldm = LDM_PREFIXES.map(([re, prefix]) => [re.exec(key), prefix] as const).find(([m]) => m);
    if (ldm) put(`${ldm[1]}${ldm[0]![1]}`, refFromFile(file, key));
    const clip = OPENCLIP_PREFIXES.map(([re, prefix]) => [re.exec(key), prefix] as const).find(([m]) => m);
    if (clip) openClip.push([clip[1], key, clip[0]![1]]);
  }
  for (const [prefix, key, inner] of openClip) {
    const mapped = openClipToHf(inner);
    if (!mapped) continue;
    const ref = refFromFile(file, key);
    if ('fusedQkv' in mapped) {
      const width = ref.shape[0] / 3;
      mapped.fusedQkv.forEach((name, i) => put(`${prefix}.${name}`, rowSlice(ref, i * width, width)));
    } else if (inner === 'text_projection') {
      // OpenCLIP applies x @ P with P stored [width, proj]; transformers stores the Linear weight [proj, width].
      put(`${prefix}.${mapped.path}`, transposedRef(ref));
    } else {
      put(`${prefix}.${mapped.path}`, ref);
    }
  }
}

function unetLayoutFromDiffusersKeys(keys: readonly string[]): UNetLayout {
  const levels = new Set(keys.map((k) => /^down_blocks\.(\d+)\./.exec(k)?.[1]).filter(Boolean)).size;
  const numResBlocks = new Set(keys.map((k) => /^down_blocks\.0\.resnets\.(\d+)\./.exec(k)?.[1]).filter(Boolean)).size;
  const attention = Array.from({ length: levels }, (_, i) => keys.some((k) => k.startsWith(`down_blocks.${i}.attentions.`)));
  return { levels, numResBlocks, attention };
}

interface ComponentConfig extends DeclaredConfig {
  component?: Component;
}

/** Reads what a diffusers component's config.json states (class, head counts, activation, VAE scale). */
function declaredFromComponentConfig(path: string, clipPrefix = 'te'): ComponentConfig {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new FileFormatError(path, `is not valid JSON (${(err as Error).message})`, 'bad_config');
  }
  const cls = String(json._class_name ?? (json.architectures as string[] | undefined)?.[0] ?? '');
  if (cls.startsWith('UNet2DConditionModel')) {
    const levels = (json.block_out_channels as number[] | undefined)?.length ?? 4;
    const h = json.num_attention_heads ?? json.attention_head_dim;
    // diffusers reads `attention_head_dim` as the number of heads when num_attention_heads is unset.
    const heads = Array.isArray(h) ? (h as number[]) : typeof h === 'number' ? Array<number>(levels).fill(h) : undefined;
    return { component: 'unet', unetHeads: heads };
  }
  if (cls.startsWith('AutoencoderKL')) {
    return { component: 'vae', vaeScalingFactor: typeof json.scaling_factor === 'number' ? json.scaling_factor : undefined };
  }
  if (cls.startsWith('CLIPTextModel')) {
    const act = json.hidden_act === 'quick_gelu' ? 'quick_gelu' : json.hidden_act === 'gelu' ? 'gelu' : undefined;
    const heads = typeof json.num_attention_heads === 'number' ? json.num_attention_heads : undefined;
    return { component: clipPrefix === 'te2' ? 'te2' : 'te', clip: { [clipPrefix]: { heads, activation: act } } };
  }
  return {};
}

const DIFFUSERS_COMPONENTS: { folder: string; files: string[]; clipPrefix?: string }[] = [
  { folder: 'unet', files: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'] },
  { folder: 'vae', files: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'] },
  { folder: 'text_encoder', files: ['model.safetensors', 'model.fp16.safetensors'], clipPrefix: 'te' },
  { folder: 'text_encoder_2', files: ['model.safetensors', 'model.fp16.safetensors'], clipPrefix: 'te2' },
];

function openFolder(path: string): Checkpoint {
  const components = DIFFUSERS_COMPONENTS.map((c) => ({ ...c, dir: join(path, c.folder) })).filter((c) => existsSync(c.dir));
  const single = existsSync(join(path, 'config.json'));
  if (components.length === 0 && !single) {
    throw new ModelLayoutError(
      `${path}: not a diffusers folder: expected model_index.json with unet/, vae/, text_encoder/ sub-folders, or a ` +
        `component folder with config.json and a .safetensors file`,
    );
  }
  const isSdxl = components.some((c) => c.folder === 'text_encoder_2');
  const targets = single ? [{ folder: '.', dir: path, files: DIFFUSERS_COMPONENTS.flatMap((c) => c.files), clipPrefix: 'te' }] : components;
  const files: SafetensorsFile[] = [];
  const weights = new Map<string, WeightRef>();
  const declared: DeclaredConfig & { clip: Record<string, { heads?: number; activation?: 'quick_gelu' | 'gelu' }> } = { clip: {} };
  try {
    for (const c of targets) {
      const file = c.files.map((f) => join(c.dir, f)).find((f) => existsSync(f));
      if (!file) {
        const pickle = ['diffusion_pytorch_model.bin', 'pytorch_model.bin'].map((f) => join(c.dir, f)).find((f) => existsSync(f));
        if (pickle) throw new FileFormatError(pickle, 'is a PyTorch pickle; only .safetensors weights are read (pickles can run code when loaded)', 'pickle_refused');
        throw new ModelLayoutError(`${c.dir}: no ${c.files.join(' or ')} found`);
      }
      const clipPrefix = isSdxl && c.clipPrefix === 'te' ? 'te1' : (c.clipPrefix ?? 'te');
      const configPath = join(c.dir, 'config.json');
      const stated = existsSync(configPath) ? declaredFromComponentConfig(configPath, clipPrefix) : {};
      Object.assign(declared, { ...stated, clip: { ...declared.clip, ...stated.clip } });
      const st = SafetensorsFile.open(file);
      files.push(st);
      const component = stated.component ?? guessComponent(st);
      const before = new Set(weights.keys());
      mapFile(st, weights, component === 'te' || component === 'te2' ? 'te' : component);
      if (clipPrefix !== 'te' && (component === 'te' || component === 'te2')) {
        for (const k of [...weights.keys()]) {
          if (!before.has(k) && k.startsWith('te.')) {
            weights.set(`${clipPrefix}.${k.slice(3)}`, weights.get(k)!);
            weights.delete(k);
          }
        }
      }
    }
    return finish(path, 'diffusers', weights, {}, files, declared, predictionFromScheduler(path));
  } catch (err) {
    for (const f of files) f.close();
    throw err;
  }
}

function predictionFromScheduler(path: string): Prediction | undefined {
  const file = join(path, 'scheduler', 'scheduler_config.json');
  if (!existsSync(file)) return undefined;
  const type = (JSON.parse(readFileSync(file, 'utf8')) as { prediction_type?: string }).prediction_type;
  return type === 'v_prediction' ? 'v' : type === 'epsilon' ? 'eps' : undefined;
}

function finish(
  path: string,
  layout: CheckpointLayout,
  weights: Map<string, WeightRef>,
  metadata: Readonly<Record<string, string>>,
  files: SafetensorsFile[],
  declared: DeclaredConfig,
  statedPrediction?: Prediction,
): Checkpoint {
  const shapes = new Map([...weights].map(([k, ref]) => [k, ref.shape] as const));
  const detected = detectCheckpoint(shapes, declared);
  const prediction = statedPrediction ?? predictionFromMetadata(metadata, files) ?? sd2Heuristic(detected.family, weights);
  return new Checkpoint(path, layout, { ...detected, prediction }, weights, metadata, files);
}

function predictionFromMetadata(metadata: Readonly<Record<string, string>>, files: readonly SafetensorsFile[]): Prediction | undefined {
  const stated = metadata['modelspec.prediction_type'];
  if (stated === 'v') return 'v';
  if (stated === 'epsilon') return 'eps';
  // Some trainers mark v-prediction checkpoints with an empty `v_pred` tensor (ComfyUI honours it too).
  if (files.some((f) => f.has('v_pred'))) return 'v';
  return undefined;
}

/**
 * SD2.x 768-v and 512-base checkpoints have identical shapes. Like ComfyUI, tell them apart by the spread of
 * one late LayerNorm bias, which v-prediction training leaves much wider.
 */
function sd2Heuristic(family: string, weights: ReadonlyMap<string, WeightRef>): Prediction | undefined {
  if (family !== 'sd2') return undefined;
  const ref = weights.get('unet.output_blocks.11.1.transformer_blocks.0.norm1.bias');
  if (!ref) return undefined;
  const v = readWeight(ref);
  let mean = 0;
  for (const x of v) mean += x / v.length;
  let variance = 0;
  for (const x of v) variance += (x - mean) ** 2 / v.length;
  return Math.sqrt(variance) > 0.09 ? 'v' : 'eps';
}

/** A short human description (CLI `info`, logs). */
export function describeCheckpoint(ckpt: Checkpoint): string {
  const c = ckpt.config;
  const parts = [`${basename(ckpt.path)}: ${c.family} (${ckpt.layout}), prediction ${c.prediction ?? 'eps (assumed)'}`];
  if (c.unet) parts.push(`UNet ${c.unet.modelChannels}×[${c.unet.channelMult}] heads [${c.unet.heads}] context ${c.unet.contextDim}`);
  if (c.vae) parts.push(`VAE ${c.vae.baseChannels}×[${c.vae.channelMult}] latent ${c.vae.latentChannels}`);
  for (const t of c.clip) parts.push(`CLIP ${t.width}w ${t.layers}L ${t.heads}h ${t.activation}${t.projectionDim ? ` proj ${t.projectionDim}` : ''}`);
  return parts.join('; ');
}
