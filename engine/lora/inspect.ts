/** What is in a LoRA file, for `loragraph lora inspect` and the LoRA info node (text and JSON). */
import { detectLoraBase, familyName } from './base-model.ts';
import { familyLabel } from './families.ts';
import { sharedLoraCache, type LoraFile, type LoraFileCache, type LoraModule } from './file.ts';
import { summariseNames } from './keys.ts';
import { unetPlace } from './targets.ts';
import { triggerWords, type TriggerWords } from './triggers.ts';

export interface Range {
  readonly min: number;
  readonly max: number;
}

export interface LoraInspection {
  readonly path: string;
  readonly fileBytes: number;
  readonly tensors: number;
  /** Naming styles of the keys (kohya, peft, diffusers, lycoris, kohya-oft, omi). */
  readonly keyStyles: readonly string[];
  /** Modules per family label ("LoRA", "LoCon (Tucker)", "DoRA (LoRA)", …). */
  readonly families: Readonly<Record<string, number>>;
  readonly baseModel: { readonly family: string; readonly decidedBy: string };
  /** Rank range per family label (families without a rank, such as full diffs, are absent). */
  readonly ranks: Readonly<Record<string, Range>>;
  /** alpha range over the rank-scaled modules that store one, and how many of them do not (scale 1). */
  readonly alpha: Range & { readonly missing: number };
  readonly modules: {
    readonly total: number;
    readonly byComponent: Readonly<Record<string, number>>;
    /** UNet modules by block group (in / mid / out; other for anything else). */
    readonly byGroup: Readonly<Record<string, number>>;
  };
  readonly unused: { readonly count: number; readonly summary: string };
  readonly triggerWords: TriggerWords;
  readonly metadata: { readonly count: number; readonly summary: Readonly<Record<string, string>> };
}

const SUMMARY_KEYS = [
  'ss_output_name', 'ss_sd_model_name', 'ss_network_module', 'ss_network_dim', 'ss_network_alpha', 'ss_network_args',
  'ss_resolution', 'ss_num_train_images', 'ss_epoch', 'ss_steps', 'ss_clip_skip', 'ss_training_comment',
  'modelspec.title', 'modelspec.author', 'modelspec.date', 'modelspec.merged_from',
];

export function inspectLora(path: string, cache: LoraFileCache = sharedLoraCache): LoraInspection {
  const file = cache.get(path);
  const count = (keys: readonly string[]) => {
    const out: Record<string, number> = {};
    for (const k of keys) out[k] = (out[k] ?? 0) + 1;
    return out;
  };
  const ranks: Record<string, Range> = {};
  for (const m of file.modules) {
    const r = moduleRank(file, m);
    if (r === undefined) continue;
    const label = familyLabel(m);
    ranks[label] = { min: Math.min(r, ranks[label]?.min ?? r), max: Math.max(r, ranks[label]?.max ?? r) };
  }
  // alpha scales the rank only in these families (in OFT it is a constraint; the others have none).
  const scaled = file.modules.filter((m) => ['lora', 'locon', 'loha', 'lokr', 'glora'].includes(m.family));
  const alphas = scaled.filter((m) => m.entries.has('alpha')).map((m) => file.read(m.entries.get('alpha')!)[0]);
  const base = detectLoraBase(file);
  const summary: Record<string, string> = {};
  for (const k of SUMMARY_KEYS) if (file.metadata[k]) summary[k] = file.metadata[k].length > 200 ? `${file.metadata[k].slice(0, 200)}…` : file.metadata[k];
  return {
    path: file.path,
    fileBytes: file.fileBytes,
    tensors: file.tensorCount,
    keyStyles: [...new Set(file.modules.map((m) => m.style))],
    families: count(file.modules.map((m) => familyLabel(m))),
    baseModel: { family: base.family ? familyName(base.family) : 'unknown', decidedBy: base.decidedBy },
    ranks,
    alpha: { min: alphas.length ? Math.min(...alphas) : NaN, max: alphas.length ? Math.max(...alphas) : NaN, missing: scaled.length - alphas.length },
    modules: {
      total: file.modules.length,
      byComponent: count(file.modules.map((m) => m.component)),
      byGroup: count(file.modules.filter((m) => m.component === 'unet').map((m) => unetPlace(m.path).group ?? 'other')),
    },
    unused: { count: file.unused.length, summary: summariseNames(file.unused.map((u) => `${u.key} (${u.reason})`), 6) },
    triggerWords: triggerWords(file.path, file.metadata),
    metadata: { count: Object.keys(file.metadata).length, summary },
  };
}

/** The rank a module was trained at, where its family has one. */
function moduleRank(file: LoraFile, m: LoraModule): number | undefined {
  const first = (entry: string) => (m.entries.has(entry) ? file.shape(m.entries.get(entry)!)[0] : undefined);
  switch (m.family) {
    case 'lora':
    case 'locon':
      return first('down');
    case 'loha':
      return first('hada_w1_b');
    case 'lokr':
      return first('lokr_w2_b') ?? first('lokr_w1_b');
    case 'glora':
      return Math.min(first('a2')!, first('a1')!);
    default:
      return undefined;
  }
}

export function formatLoraInspection(i: LoraInspection): string {
  const list = (r: Readonly<Record<string, number>>) => Object.entries(r).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const range = (r: Range) => (r.min === r.max ? String(r.min) : `${r.min}–${r.max}`);
  const lines = [
    `${i.path} (${(i.fileBytes / 1024 / 1024).toFixed(1)} MiB, ${i.tensors} tensors, keys: ${i.keyStyles.join(', ') || 'none'})`,
    `base model: ${i.baseModel.family} (${i.baseModel.decidedBy})`,
    `families: ${list(i.families)}`,
    `rank: ${Object.entries(i.ranks).map(([k, r]) => `${k} ${range(r)}`).join(', ') || 'none'}`,
    `alpha: ${Number.isNaN(i.alpha.min) ? 'none' : range(i.alpha)}${i.alpha.missing ? ` (${i.alpha.missing} modules without: scale 1)` : ''}`,
    `modules: ${i.modules.total} (${list(i.modules.byComponent)}; UNet groups ${list(i.modules.byGroup)})`,
  ];
  if (i.unused.count) lines.push(`unused keys: ${i.unused.count}: ${i.unused.summary}`);
  const t = i.triggerWords;
  lines.push(`trigger words: ${t.words.join(', ') || 'none'}`);
  if (t.frequentTags.length) lines.push(`frequent tags: ${t.frequentTags.slice(0, 10).map((x) => `${x.tag} (${x.count})`).join(', ')}`);
  lines.push(`metadata: ${i.metadata.count} entries`);
  for (const [k, v] of Object.entries(i.metadata.summary)) lines.push(`  ${k}: ${v}`);
  return lines.join('\n');
}

