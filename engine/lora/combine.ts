/**
 * Combines several LoRAs (with their spec strengths) into one kohya-format LoRA equal to their weighted sum.
 *   exact: plain LoRA/LoCon modules on the same weight are concatenated along the rank, the strength and
 *          alpha/rank folded into lora_up (alpha = rank, so scale 1); other families cannot be written exactly
 *          as lora_up/lora_down and are refused.
 *   rank R: a weight whose concatenated rank exceeds R (or whose change is not low-rank) gets the truncated
 *          SVD of its total change, kohya's convention: lora_up = U·S, lora_down = Vᵀ, no clamping.
 * 1-D changes (norm layers) and bias changes are written as LyCORIS `diff` / `diff_b` entries, exactly.
 * With `checkpoint` the LoRAs are matched to that model (names, blocks and weight-dependent families such as
 * DoRA need it); without, modules are combined by name and blocks follow the standard layout of the LoRAs'
 * base model. Step schedules are combined at their first-step value.
 */
import { basename } from 'node:path';
import { InvalidInputError, LoraBaseModelError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../models/checkpoint.ts';
import type { ModelFamily } from '../models/config.ts';
import { unetLdmToDiffusers, type UNetLayout } from '../models/keymap.ts';
import { readWeight } from '../models/weights.ts';
import { numel, writeSafetensors, type TensorEntry } from '../safetensors/index.ts';
import { fromFloat32 } from '../tensor/dtype.ts';
import { detectLoraBase, familyName } from './base-model.ts';
import { familyLabel, isAdditive } from './families.ts';
import { sharedLoraCache, type LoraFile, type LoraModule } from './file.ts';
import { summariseNames, underscored } from './keys.ts';
import { trailing } from './linalg.ts';
import { LoraSet, type LoraSetOptions } from './lora-set.ts';
import { moduleAdapters, type AdditiveAdapter, type LowRank, type ModuleData } from './math/index.ts';
import { loraPath } from './resolve.ts';
import { checkBlocks, formatLoraSpec, parseLoraSpec, strengthAt, type LoraSpec } from './spec.ts';
import { truncatedSvd } from './svd.ts';
import { unetBlockNames, unetPlace } from './targets.ts';

export type CombineMode = { readonly rank: number } | { readonly exact: true };

export interface CombineOptions extends LoraSetOptions {
  /** The base model the LoRAs are for (see the module comment). */
  readonly checkpoint?: string;
  /** Storage type of the written tensors (default F32, so "exact" is exact). */
  readonly dtype?: 'F32' | 'F16' | 'BF16';
}

export interface CombineResult {
  readonly outPath: string;
  readonly baseModel: ModelFamily | undefined;
  readonly modules: number;
  /** Modules written exactly, and by truncated SVD. */
  readonly exact: number;
  readonly approximated: number;
  readonly maxRank: number;
}

/** A low-rank term with its strength. */
type Part = LowRank & { readonly strength: number };

/** The total change of one model tensor. */
interface Unit {
  /** The kohya module name the change is written under. */
  readonly key: string;
  readonly bias: boolean;
  readonly shape: readonly number[];
  /** Every term as factors, or undefined when some term is not a plain LoRA/LoCon. */
  lowRank(): Part[] | undefined;
  delta(): Float32Array;
}

const STANDARD_LAYOUTS: Readonly<Record<ModelFamily, UNetLayout>> = {
  sd1: { levels: 4, numResBlocks: 2, attention: [true, true, true, false] },
  sd2: { levels: 4, numResBlocks: 2, attention: [true, true, true, false] },
  sdxl: { levels: 3, numResBlocks: 2, attention: [false, true, true] },
};

export function combineLoras(
  specs: readonly (LoraSpec | string)[],
  mode: CombineMode,
  outPath: string,
  options: CombineOptions = {},
): CombineResult {
  const rank = 'rank' in mode ? mode.rank : undefined;
  if (rank !== undefined && !(Number.isInteger(rank) && rank >= 1)) throw new InvalidInputError(`combine rank must be a whole number ≥ 1, got ${rank}`);
  const parsed = specs.map((s) => (typeof s === 'string' ? parseLoraSpec(s) : s));
  if (parsed.length === 0) throw new InvalidInputError('combine needs at least one LoRA');
  const checkpoint = options.checkpoint ? openCheckpoint(options.checkpoint) : undefined;
  try {
    const { units, family, files } = checkpoint ? unitsFromCheckpoint(checkpoint, parsed, options) : unitsFromFiles(parsed, options);
    const refused = units.filter((u) => rank === undefined && u.shape.length > 1 && !u.bias && !u.lowRank());
    if (refused.length) {
      throw new InvalidInputError(
        `an exact combine can only concatenate plain LoRA/LoCon modules; ${refused.length} changes are not low-rank ` +
          `(${summariseNames(refused.map((u) => u.key), 4)}): give a rank to combine them by SVD`,
      );
    }
    const dtype = options.dtype ?? 'F32';
    const entries: TensorEntry[] = [];
    const put = (name: string, shape: readonly number[], values: Float32Array) => entries.push({ name, dtype, shape, data: fromFloat32(values, dtype) });
    let exact = 0;
    let approximated = 0;
    let maxRank = 0;
    let convRank = 0;
    for (const unit of [...units].sort((a, b) => a.key.localeCompare(b.key) || Number(a.bias) - Number(b.bias))) {
      if (unit.bias || unit.shape.length === 1) {
        put(`${unit.key}.${unit.bias ? 'diff_b' : 'diff'}`, unit.shape, unit.delta());
        exact++;
        continue;
      }
      const parts = unit.lowRank()?.filter((p) => p.strength !== 0);
      if (parts?.length === 0) continue;
      const total = parts?.reduce((n, p) => n + p.rank, 0) ?? Infinity;
      const [out, cols] = [unit.shape[0], trailing(unit.shape)];
      let factors: { up: Float32Array; down: Float32Array; rank: number };
      if (parts && (rank === undefined || total <= rank)) {
        factors = concatenate(parts, out, cols);
        exact++;
      } else {
        factors = truncatedSvd(unit.delta(), out, cols, rank!);
        approximated++;
      }
      const r = factors.rank;
      const conv = unit.shape.length === 4;
      put(`${unit.key}.lora_up.weight`, conv ? [out, r, 1, 1] : [out, r], factors.up);
      put(`${unit.key}.lora_down.weight`, conv ? [r, ...unit.shape.slice(1)] : [r, cols], factors.down);
      put(`${unit.key}.alpha`, [], Float32Array.of(r));
      maxRank = Math.max(maxRank, r);
      if (conv && unit.shape[2] * unit.shape[3] > 1) convRank = Math.max(convRank, r);
    }
    writeSafetensors(outPath, entries, combinedMetadata(parsed, files, family, { maxRank, convRank, mode, title: basename(outPath) }));
    return { outPath, baseModel: family, modules: new Set(units.map((u) => u.key)).size, exact, approximated, maxRank };
  } finally {
    checkpoint?.close();
  }
}

/** [s₁·scale₁·up₁ | s₂·scale₂·up₂ | …] and [down₁; down₂; …]. */
function concatenate(parts: readonly Part[], out: number, cols: number): { up: Float32Array; down: Float32Array; rank: number } {
  const total = parts.reduce((n, p) => n + p.rank, 0);
  const up = new Float32Array(out * total);
  const down = new Float32Array(total * cols);
  let offset = 0;
  for (const p of parts) {
    const f = p.strength * p.scale;
    for (let o = 0; o < out; o++) for (let k = 0; k < p.rank; k++) up[o * total + offset + k] = f * p.up[o * p.rank + k];
    down.set(p.down, offset * cols);
    offset += p.rank;
  }
  return { up, down, rank: total };
}

function unitsFromCheckpoint(checkpoint: Checkpoint, specs: readonly LoraSpec[], options: CombineOptions): { units: Unit[]; family: ModelFamily; files: LoraFile[] } {
  const set = LoraSet.open(checkpoint, specs, options);
  const family = checkpoint.config.family;
  const units = set.names().map((name): Unit => {
    const ref = checkpoint.weight(name);
    const module = name.replace(/\.(weight|bias)$/, '');
    return {
      key: kohyaName(module, family, set.targets.layout),
      bias: name.endsWith('.bias'),
      shape: ref.shape,
      lowRank: () => set.lowRank(name)?.map((t) => ({ ...t, strength: set.strength(t.lora, name) })),
      delta: () => {
        const base = readWeight(ref);
        const terms = set.linearTerms(name, base);
        if (!terms) {
          const merged = set.mergedWeight(name, base);
          return merged.map((v, i) => v - base[i]);
        }
        const sum = new Float32Array(base.length);
        for (const t of terms) {
          const s = set.strength(t.lora, name);
          for (let i = 0; i < sum.length; i++) sum[i] += s * t.delta[i];
        }
        return sum;
      },
    };
  });
  return { units, family, files: set.loras.map((l) => l.file) };
}

/** kohya's name for a canonical module: diffusers UNet paths for SD1/SD2, original ones for SDXL (as its trainers write). */
function kohyaName(module: string, family: ModelFamily, layout: UNetLayout | undefined): string {
  const dot = module.indexOf('.');
  const [component, path] = [module.slice(0, dot), module.slice(dot + 1)];
  if (component !== 'unet') return `lora_${component}_${underscored(path)}`;
  const diffusers = family !== 'sdxl' && layout ? unetLdmToDiffusers(path, layout) : undefined;
  return `lora_unet_${underscored(diffusers ?? path)}`;
}

interface FileTerm {
  readonly strength: number;
  readonly adapter: AdditiveAdapter;
}

function unitsFromFiles(specs: readonly LoraSpec[], options: CombineOptions): { units: Unit[]; family: ModelFamily | undefined; files: LoraFile[] } {
  const inputs = specs.map((spec) => ({ spec, file: (options.cache ?? sharedLoraCache).get(loraPath(spec.name, options.lorasDir)) }));
  const family = commonFamily(inputs.map(({ spec, file }) => ({ label: spec.name, family: detectLoraBase(file).family })));
  const layout = family ? STANDARD_LAYOUTS[family] : undefined;
  const blocks = layout ? unetBlockNames(layout) : [];
  const groups = new Map<string, { key: string; bias: boolean; shape: readonly number[]; terms: FileTerm[] }>();
  for (const { spec, file } of inputs) {
    checkBlocks(spec, blocks, family ? `a standard ${familyName(family)} UNet` : 'a LoRA of unknown base model (pass the checkpoint)');
    for (const module of file.modules) {
      if (!isAdditive(module)) {
        throw new InvalidInputError(
          `${spec.name}: ${module.name} is ${familyLabel(module)}, whose change depends on the base model's weights; pass the checkpoint to combine it`,
        );
      }
      const component = module.component === 'te' && module.firstEncoder && family === 'sdxl' ? 'te1' : module.component;
      const place = component === 'unet' ? unetPlace(module.path, layout) : { component };
      const strength = strengthAt(spec, { ...place, blockCount: blocks.length }, 0, 1);
      if (strength === 0) continue;
      const key = `lora_${component}_${module.path}`;
      const data = file.data(module);
      const shapes = naturalShapes(module, data);
      const adapters = moduleAdapters(module, data, shapes.weight, shapes.bias);
      const add = (bias: boolean, shape: readonly number[] | undefined, adapter: AdditiveAdapter | undefined) => {
        if (!shape || !adapter) return;
        const id = `${key}|${bias}`;
        const group = groups.get(id) ?? { key, bias, shape, terms: [] };
        if (numel(group.shape) !== numel(shape) || group.shape[0] !== shape[0]) {
          throw new InvalidInputError(`${spec.name}: ${module.name} changes a [${shape.join(', ')}] tensor, another LoRA a [${group.shape.join(', ')}] one`);
        }
        // A LoCon's 4-D shape keeps the kernel that a flattened LoHa or LoKr factor lost.
        groups.set(id, { ...group, shape: shape.length > group.shape.length ? shape : group.shape, terms: [...group.terms, { strength, adapter }] });
      };
      add(false, shapes.weight, adapters.weight as AdditiveAdapter | undefined);
      add(true, shapes.bias, adapters.bias);
    }
  }
  const units = [...groups.values()].map(({ key, bias, shape, terms }): Unit => ({
    key,
    bias,
    shape,
    lowRank: () => {
      if (!terms.every((t) => t.adapter.lowRank)) return undefined;
      return terms.map((t) => ({ ...t.adapter.lowRank!(), strength: t.strength }));
    },
    delta: () => {
      const sum = new Float32Array(numel(shape));
      for (const t of terms) {
        const d = t.adapter.delta();
        for (let i = 0; i < sum.length; i++) sum[i] += t.strength * d[i];
      }
      return sum;
    },
  }));
  return { units, family, files: inputs.map((i) => i.file) };
}

function commonFamily(inputs: readonly { label: string; family: string | undefined }[]): ModelFamily | undefined {
  const known = inputs.filter((i): i is { label: string; family: ModelFamily } => ['sd1', 'sd2', 'sdxl'].includes(i.family ?? ''));
  const other = known.find((i) => i.family !== known[0].family);
  if (other) throw new LoraBaseModelError(other.label, familyName(other.family), familyName(known[0].family), `combined with ${known[0].label}`);
  return known[0]?.family;
}

/** The shape of the tensor a module changes, as far as its own tensors tell (no checkpoint). */
function naturalShapes(module: LoraModule, d: ModuleData): { weight?: readonly number[]; bias?: readonly number[] } {
  const s = (e: string) => d.shape(e);
  const biasEntry = ['up_bias', 'diff_b', 'b_norm'].find((e) => d.has(e));
  const bias = biasEntry ? [numel(s(biasEntry))] : undefined;
  switch (module.family) {
    case 'lora':
    case 'locon':
      return { weight: d.has('mid') ? [s('up')[0], s('down')[1], ...s('mid').slice(2)] : [s('up')[0], ...s('down').slice(1)], bias };
    case 'loha':
      return {
        weight: module.tucker ? [s('hada_w1_a')[1], s('hada_w1_b')[1], ...s('hada_t1').slice(2)] : [s('hada_w1_a')[0], ...s('hada_w1_b').slice(1)],
      };
    case 'lokr': {
      const w1 = d.has('lokr_w1') ? s('lokr_w1') : [s('lokr_w1_a')[0], s('lokr_w1_b')[1]];
      const w2 = d.has('lokr_w2')
        ? s('lokr_w2')
        : module.tucker
          ? [s('lokr_w2_a')[1], s('lokr_w2_b')[1], ...s('lokr_t2').slice(2)]
          : [s('lokr_w2_a')[0], trailing(s('lokr_w2_b'))];
      return { weight: [w1[0] * w2[0], w1[1] * w2[1], ...w2.slice(2)] };
    }
    case 'full':
      return { weight: d.has('diff') ? s('diff') : undefined, bias };
    case 'norm':
      return { weight: d.has('w_norm') ? s('w_norm') : undefined, bias };
    default:
      return {};
  }
}

const ARCHITECTURES: Readonly<Record<ModelFamily, { version: string; arch: string; implementation: string }>> = {
  sd1: { version: 'sd_v1', arch: 'stable-diffusion-v1/lora', implementation: 'diffusers' },
  sd2: { version: 'sd_v2', arch: 'stable-diffusion-v2-512/lora', implementation: 'diffusers' },
  sdxl: { version: 'sdxl_base_v1-0', arch: 'stable-diffusion-xl-v1-base/lora', implementation: 'https://github.com/Stability-AI/generative-models' },
};

/** kohya and SAI ModelSpec metadata, plus the inputs' dataset tags so trigger words survive. */
function combinedMetadata(
  specs: readonly LoraSpec[],
  files: readonly LoraFile[],
  family: ModelFamily | undefined,
  info: { maxRank: number; convRank: number; mode: CombineMode; title: string },
): Record<string, string> {
  const tags: Record<string, Record<string, number>> = {};
  for (const f of files) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(f.metadata.ss_tag_frequency ?? '{}');
    } catch {
      continue;
    }
    for (const [folder, counts] of Object.entries((parsed ?? {}) as Record<string, Record<string, number>>)) {
      const into = (tags[folder] ??= {});
      for (const [tag, n] of Object.entries(counts ?? {})) if (typeof n === 'number') into[tag] = (into[tag] ?? 0) + n;
    }
  }
  const arch = family ? ARCHITECTURES[family] : undefined;
  const metadata: Record<string, string> = {
    ss_network_module: 'networks.lora',
    ss_network_dim: String(info.maxRank),
    ss_network_alpha: String(info.maxRank),
    ss_v2: String(family === 'sd2' ? 'True' : 'False'),
    'modelspec.sai_model_spec': '1.0.0',
    'modelspec.title': info.title,
    'modelspec.date': new Date().toISOString(),
    'modelspec.merged_from': specs.map(formatLoraSpec).join(', '),
    loragraph_combine: JSON.stringify({ mode: info.mode, loras: specs.map(formatLoraSpec) }),
  };
  if (info.convRank) metadata.ss_network_args = JSON.stringify({ conv_dim: String(info.convRank), conv_alpha: String(info.convRank) });
  if (arch) {
    metadata.ss_base_model_version = arch.version;
    metadata['modelspec.architecture'] = arch.arch;
    metadata['modelspec.implementation'] = arch.implementation;
  }
  if (Object.keys(tags).length) metadata.ss_tag_frequency = JSON.stringify(tags);
  return metadata;
}
