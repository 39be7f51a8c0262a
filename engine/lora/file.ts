/**
 * A LoRA file opened lazily: its header is parsed into modules (keys.ts, families.ts) up front; tensors are
 * read on first use and kept, so changing strengths or re-applying never reads the file again. Files are
 * shared through a small cache keyed by path, size and modification time.
 */
import { realpathSync, statSync } from 'node:fs';
import { FileFormatError } from '../errors.ts';
import { SafetensorsFile } from '../safetensors/index.ts';
import { detectModuleKind, type ModuleKind } from './families.ts';
import { parseLoraKey, type KeyStyle, type LoraComponent } from './keys.ts';
import type { ModuleData } from './math/index.ts';

export interface LoraModule extends ModuleKind {
  /** The module's name as written in the file. */
  readonly name: string;
  readonly component: LoraComponent;
  /** Module path inside the component, kohya spelling (dots → underscores). */
  readonly path: string;
  readonly firstEncoder: boolean;
  readonly style: KeyStyle;
  /** Normalised entry → tensor name in the file. */
  readonly entries: ReadonlyMap<string, string>;
}

/** A key (or a whole module) the engine cannot use, and why. */
export interface UnusedKey {
  readonly key: string;
  readonly reason: string;
}

/** PEFT's alpha settings for one component (from the `lora_adapter_metadata` header entry). */
interface PeftAlpha {
  readonly alpha?: number;
  readonly patterns: readonly [RegExp, number][];
  readonly rslora: boolean;
}

export class LoraFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly modules: readonly LoraModule[];
  /** Keys no module could use (unknown names, incomplete modules, entries a family ignores). */
  readonly unused: readonly UnusedKey[];
  readonly tensorCount: number;
  readonly fileBytes: number;
  /** Size and modification time when read: a file re-saved under the same name is another LoraFile. */
  readonly stamp: string;
  private file: SafetensorsFile | undefined;
  private readonly values = new Map<string, Float32Array>();
  private readonly peft: ReadonlyMap<string, PeftAlpha>;

  private constructor(path: string, file: SafetensorsFile) {
    this.path = path;
    this.file = file;
    this.metadata = file.metadata;
    this.tensorCount = file.keys().length;
    this.fileBytes = file.fileSize;
    this.stamp = fileStamp(path);
    const { modules, unused } = groupModules(file);
    this.modules = modules;
    this.unused = unused;
    this.peft = parsePeftMetadata(file.metadata.lora_adapter_metadata);
  }

  static open(path: string): LoraFile {
    return new LoraFile(path, SafetensorsFile.open(path));
  }

  shape(tensor: string): readonly number[] {
    return this.header().info(tensor).shape;
  }

  /** A tensor as float32, read once. Callers must not modify it. */
  read(tensor: string): Float32Array {
    let v = this.values.get(tensor);
    if (!v) {
      v = this.header().readFloat32(tensor);
      // readFloat32 may return a view of a shared read buffer; own the memory.
      if (v.byteOffset !== 0 || v.buffer.byteLength !== v.byteLength) v = v.slice();
      this.values.set(tensor, v);
    }
    return v;
  }

  /** One module's tensors, as the family math reads them. */
  data(module: LoraModule): ModuleData {
    const tensor = (entry: string): string => {
      const name = module.entries.get(entry);
      if (!name) throw new Error(`${module.name} has no ${entry}`);
      return name;
    };
    return {
      name: module.name,
      has: (entry) => module.entries.has(entry),
      shape: (entry) => this.shape(tensor(entry)),
      read: (entry) => this.read(tensor(entry)),
      scale: (rank) => this.scale(module, rank),
    };
  }

  /** Bytes of tensor data held in memory (for cache accounting and debug logs). */
  get loadedBytes(): number {
    let n = 0;
    for (const v of this.values.values()) n += v.byteLength;
    return n;
  }

  /**
   * alpha/rank with the defaults every trainer uses: no alpha (or 0) means scale 1, and so does an unknown
   * rank (LoKr with both factors full). A `scale` entry (A1111) overrides both. PEFT files carry alpha in the
   * header instead of tensors.
   */
  scale(module: LoraModule, rank: number | undefined): number {
    const explicit = module.entries.get('scale');
    if (explicit) return this.read(explicit)[0];
    if (rank === undefined || rank <= 0) return 1;
    const alphaTensor = module.entries.get('alpha');
    const peft = this.peftFor(module);
    const alpha = alphaTensor ? this.read(alphaTensor)[0] : peftAlpha(peft, module);
    if (!alpha) return 1;
    return peft?.rslora && !alphaTensor ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  /** Forgets the tensors read so far; later reads load them again. */
  dropValues(): void {
    this.values.clear();
  }

  /** Closes the file handle; tensors already read stay, and a later read reopens the file. */
  release(): void {
    this.file?.close();
    this.file = undefined;
  }

  private header(): SafetensorsFile {
    if (!this.file) {
      if (fileStamp(this.path) !== this.stamp) {
        throw new FileFormatError(this.path, 'changed on disk since it was loaded; load the LoRA again', 'lora_changed');
      }
      this.file = SafetensorsFile.open(this.path);
    }
    return this.file;
  }

  private peftFor(module: LoraModule): PeftAlpha | undefined {
    const component = module.component === 'unet' ? 'unet' : module.component === 'te2' ? 'text_encoder_2' : 'text_encoder';
    return this.peft.get(component) ?? this.peft.get('');
  }
}

export function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.size}:${st.mtimeMs}`;
}

function groupModules(file: SafetensorsFile): { modules: LoraModule[]; unused: UnusedKey[] } {
  const unused: UnusedKey[] = [];
  const groups = new Map<string, { first: Omit<LoraModule, keyof ModuleKind | 'entries'>; entries: Map<string, string> }>();
  for (const key of file.keys()) {
    const parsed = parseLoraKey(key);
    if ('reason' in parsed) {
      unused.push({ key, reason: parsed.reason });
      continue;
    }
    const id = `${parsed.component}/${parsed.path}`;
    let group = groups.get(id);
    if (!group) {
      const { module, component, path, firstEncoder, style } = parsed;
      group = { first: { name: module, component, path, firstEncoder, style }, entries: new Map() };
      groups.set(id, group);
    }
    if (group.entries.has(parsed.entry)) unused.push({ key, reason: `a second "${parsed.entry}" for module ${group.first.name}` });
    else group.entries.set(parsed.entry, key);
  }
  const modules: LoraModule[] = [];
  for (const { first, entries } of groups.values()) {
    const kind = detectModuleKind(new Set(entries.keys()), (e) => file.info(entries.get(e)!).shape);
    if (typeof kind === 'string') {
      for (const key of entries.values()) unused.push({ key, reason: kind });
      continue;
    }
    for (const e of kind.ignored) unused.push({ key: entries.get(e)!, reason: `not used by ${kind.family} modules` });
    modules.push({ ...first, ...kind, entries });
  }
  return { modules, unused };
}

/**
 * diffusers writes the PEFT LoraConfig into the header as JSON, either flat (`lora_alpha`, `alpha_pattern`)
 * or per component (`unet.lora_alpha`, `text_encoder.alpha_pattern`, or nested under `unet`).
 */
function parsePeftMetadata(raw: string | undefined): Map<string, PeftAlpha> {
  const out = new Map<string, PeftAlpha>();
  if (!raw) return out;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return out;
  }
  if (typeof json !== 'object' || json === null) return out;
  const byComponent = new Map<string, Record<string, unknown>>();
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const m = /^(unet|text_encoder_2|text_encoder|transformer)\.(.+)$/.exec(key);
    if (m) byComponent.set(m[1], { ...byComponent.get(m[1]), [m[2]]: value });
    else if (['unet', 'text_encoder', 'text_encoder_2'].includes(key) && typeof value === 'object' && value !== null) {
      byComponent.set(key, { ...byComponent.get(key), ...(value as Record<string, unknown>) });
    } else byComponent.set('', { ...byComponent.get(''), [key]: value });
  }
  for (const [component, config] of byComponent) {
    const patterns: [RegExp, number][] = [];
    const alphaPattern = config.alpha_pattern;
    if (typeof alphaPattern === 'object' && alphaPattern !== null) {
      for (const [pattern, alpha] of Object.entries(alphaPattern as Record<string, unknown>)) {
        if (typeof alpha === 'number') patterns.push([peftPattern(pattern), alpha]);
      }
    }
    const alpha = typeof config.lora_alpha === 'number' ? config.lora_alpha : undefined;
    out.set(component, { alpha, patterns, rslora: config.use_rslora === true });
  }
  return out;
}

/** PEFT matches a pattern against the end of the dotted module path. */
function peftPattern(pattern: string): RegExp {
  try {
    return new RegExp(`(^|\\.)(${pattern})$`);
  } catch {
    return new RegExp(`(^|\\.)${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  }
}

function peftAlpha(peft: PeftAlpha | undefined, module: LoraModule): number | undefined {
  if (!peft) return undefined;
  const dotted = module.name.replace(/^(base_model\.model\.)?(unet|text_encoder_2|text_encoder)\./, '');
  for (const [re, alpha] of peft.patterns) if (re.test(dotted)) return alpha;
  return peft.alpha;
}

/** Parsed LoRA files shared between LoRA sets, so a new set of strengths reuses what was read. */
export class LoraFileCache {
  private readonly files = new Map<string, LoraFile>();

  constructor(private readonly limit = 4) {}

  get(path: string): LoraFile {
    const real = realpathSync(path);
    const key = `${real}|${fileStamp(real)}`;
    const hit = this.files.get(key);
    if (hit) {
      // Re-insert to mark it most recently used.
      this.files.delete(key);
      this.files.set(key, hit);
      return hit;
    }
    const file = LoraFile.open(real);
    this.files.set(key, file);
    while (this.files.size > this.limit) {
      const [oldest, evicted] = this.files.entries().next().value as [string, LoraFile];
      evicted.release();
      this.files.delete(oldest);
    }
    return file;
  }

  clear(): void {
    for (const f of this.files.values()) f.release();
    this.files.clear();
  }
}

/** The cache used when a caller passes none. */
export const sharedLoraCache = new LoraFileCache();
