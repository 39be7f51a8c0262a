/**
 * LoRAs applied to one checkpoint: what the runtime, bake and combine use. Built from a checkpoint and specs,
 * it resolves each LoRA file (cached), checks its base model, matches its modules to the checkpoint's
 * canonical weights and checks every shape up front. Then, per canonical weight and sampling step, it gives
 * the merged weight, or the pieces to apply it another way:
 *   - linearTerms: W' = W + Σ sᵢ(step)·Dᵢ with fixed Dᵢ, when that holds, so a step schedule only rescales;
 *   - lowRank: the factors of every term (plain LoRA/LoCon), to run as a side branch next to W.
 * Strength 0 leaves a weight bit-for-bit equal to the base.
 */
import { basename } from 'node:path';
import { LoraMismatchError } from '../errors.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import { checkLoraBase, detectLoraBase, familyName, type LoraBase } from './base-model.ts';
import { familyLabel } from './families.ts';
import { sharedLoraCache, type LoraFile, type LoraFileCache, type LoraModule } from './file.ts';
import { summariseNames } from './keys.ts';
import { loraLog, type LoraLog, type LoraLogOptions } from './log.ts';
import { moduleAdapters, ShapeError, type Adapter, type LowRank } from './math/index.ts';
import { loraPath } from './resolve.ts';
import { formatStrength, strengthAtStep } from './schedule.ts';
import { checkBlocks, formatLoraSpec, parseLoraSpec, resolveStrengths, strengthAt, type LoraSpec, type StrengthTarget } from './spec.ts';
import { ModelTargets } from './targets.ts';

export interface LoraSetOptions extends LoraLogOptions {
  /** Resolve names inside this folder (prompt tags, nodes); without it a name is a path to the file. */
  readonly lorasDir?: string;
  /** Parsed-file cache (default: one shared by the process). */
  readonly cache?: LoraFileCache;
}

export interface ActiveLora {
  readonly index: number;
  readonly spec: LoraSpec;
  readonly path: string;
  readonly file: LoraFile;
  readonly base: LoraBase;
  /** Names of the modules that matched a model weight, and of those that did not. */
  readonly matched: readonly string[];
  readonly unmatched: readonly string[];
}

/** One LoRA module's adapter on one model tensor. */
interface Term {
  readonly lora: number;
  readonly module: LoraModule;
  readonly adapter: Adapter;
}

export interface LoraTarget {
  /** Canonical name, e.g. `unet.input_blocks.1.1.proj_in.weight`. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly place: StrengthTarget;
  /** The LoRA modules that change it, in application order. */
  readonly terms: readonly { readonly lora: number; readonly module: string; readonly family: string }[];
  /** W' = W + Σ sᵢ·Dᵢ with Dᵢ independent of the strengths (see linearTerms). */
  readonly linear: boolean;
  /** Every term is a plain LoRA/LoCon (see lowRank). */
  readonly lowRank: boolean;
}

export interface LowRankTerm extends LowRank {
  readonly lora: number;
  /** The shape `down` has as a layer: [rank, in] or [rank, in, kh, kw]. */
  readonly downShape: readonly number[];
}

export class LoraSet {
  readonly checkpoint: Checkpoint;
  readonly loras: readonly ActiveLora[];
  readonly targets: ModelTargets;
  private readonly terms: ReadonlyMap<string, readonly Term[]>;
  private readonly places: ReadonlyMap<string, StrengthTarget>;
  private readonly options: LoraSetOptions;
  private readonly log: LoraLog;

  private constructor(checkpoint: Checkpoint, targets: ModelTargets, loras: ActiveLora[], terms: Map<string, Term[]>, options: LoraSetOptions) {
    this.checkpoint = checkpoint;
    this.targets = targets;
    this.loras = loras;
    this.terms = terms;
    this.options = options;
    this.log = loraLog(options);
    const blockCount = targets.blocks.length;
    this.places = new Map([...terms.keys()].map((name) => [name, { ...targets.place(name), blockCount }]));
  }

  /**
   * Throws LoraNotFoundError / FileFormatError for a missing or bad file, LoraSpecError for a bad spec or
   * `blocks=` list, LoraBaseModelError for a LoRA of another model family, LoraMismatchError when a LoRA
   * matches no weight (code lora_no_match) or a tensor does not fit (code lora_shape_mismatch).
   */
  static open(checkpoint: Checkpoint, specs: readonly (LoraSpec | string)[], options: LoraSetOptions = {}): LoraSet {
    return LoraSet.build(checkpoint, specs, options, new Map());
  }

  /** The same LoRA files with other specs (strengths): nothing is read again. */
  withSpecs(specs: readonly (LoraSpec | string)[]): LoraSet {
    return LoraSet.build(this.checkpoint, specs, this.options, new Map(this.loras.map((l) => [l.path, l.file])));
  }

  private static build(
    checkpoint: Checkpoint,
    specs: readonly (LoraSpec | string)[],
    options: LoraSetOptions,
    known: ReadonlyMap<string, LoraFile>,
  ): LoraSet {
    const log = loraLog(options);
    const targets = new ModelTargets(checkpoint);
    const terms = new Map<string, Term[]>();
    const loras: ActiveLora[] = [];
    for (const item of specs) {
      const spec = typeof item === 'string' ? parseLoraSpec(item) : item;
      const started = performance.now();
      const path = loraPath(spec.name, options.lorasDir);
      const file = known.get(path) ?? (options.cache ?? sharedLoraCache).get(path);
      const loaded = performance.now();
      const label = spec.name === path ? basename(path) : spec.name;
      checkLoraBase(file, checkpoint, label);
      checkBlocks(spec, targets.blocks, `this ${familyName(checkpoint.config.family)} UNet`);
      const index = loras.length;
      const { matched, unmatched } = matchModules(file, checkpoint, targets, label, (name, term) => {
        const list = terms.get(name) ?? [];
        list.push({ lora: index, ...term });
        terms.set(name, list);
      });
      if (matched.length === 0) {
        throw new LoraMismatchError(
          label,
          `none of its ${file.modules.length} modules matches a weight of this ${familyName(checkpoint.config.family)} model ` +
            `(${summariseNames(unmatched, 4) || `keys such as ${file.unused.slice(0, 4).map((u) => u.key).join(', ')}`}); ` +
            'it is not a LoRA for this model, or its key format is not supported',
          'lora_no_match',
        );
      }
      const lora: ActiveLora = { index, spec, path, file, base: detectLoraBase(file), matched, unmatched };
      loras.push(lora);
      if (unmatched.length) log.warn(`${label}: ${unmatched.length} of ${file.modules.length} modules match no weight of the model: ${summariseNames(unmatched)}`);
      if (file.unused.length) log.warn(`${label}: ${file.unused.length} keys not used: ${summariseNames(file.unused.map((u) => `${u.key} (${u.reason})`), 4)}`);
      log.debug(() => describeLoaded(lora, targets, loaded - started, performance.now() - loaded));
    }
    return new LoraSet(checkpoint, targets, loras, terms, options);
  }

  /** Canonical names of every weight and bias the LoRAs change. */
  names(): string[] {
    return [...this.terms.keys()];
  }

  target(name: string): LoraTarget {
    const terms = this.termsOf(name);
    return {
      name,
      shape: this.checkpoint.weight(name).shape,
      place: this.places.get(name)!,
      terms: terms.map((t) => ({ lora: t.lora, module: t.module.name, family: familyLabel(t.module) })),
      linear: isLinear(terms),
      lowRank: terms.every((t) => t.adapter.kind === 'additive' && t.adapter.lowRank !== undefined),
    };
  }

  /** Strength of LoRA `lora` (index in `loras`) on weight `name` at a sampling step (0-based) of `totalSteps`. */
  strength(lora: number, name: string, step = 0, totalSteps = 1): number {
    return strengthAt(this.loras[lora].spec, this.places.get(name)!, step, totalSteps);
  }

  /**
   * The weight with every LoRA applied, in order, at this step: additive terms add sᵢ·ΔWᵢ, weight-dependent
   * ones (DoRA, GLoRA, (IA)^3, OFT) move the current weight by sᵢ·(F(W) − W). `base` is not modified; the
   * result is a new array. A term at strength 0 is skipped, so all-zero strengths give the base bit for bit.
   */
  mergedWeight(name: string, base: Float32Array, step = 0, totalSteps = 1): Float32Array {
    const w = Float32Array.from(base);
    for (const term of this.termsOf(name)) {
      const s = this.strength(term.lora, name, step, totalSteps);
      if (s === 0) continue;
      if (term.adapter.kind === 'additive') {
        const d = term.adapter.delta();
        for (let i = 0; i < w.length; i++) w[i] += s * d[i];
      } else {
        const f = term.adapter.adapt(w);
        for (let i = 0; i < w.length; i++) w[i] += s * (f[i] - w[i]);
      }
    }
    return w;
  }

  /**
   * For a linear target, Dᵢ per LoRA such that mergedWeight = base + Σ strength(i)·Dᵢ at every step (a lone
   * weight-dependent term gives D = F(base) − base). Undefined when the target is not linear (several terms
   * of which one depends on the weight): use mergedWeight per step then.
   */
  linearTerms(name: string, base: Float32Array): { lora: number; delta: Float32Array }[] | undefined {
    const terms = this.termsOf(name);
    if (!isLinear(terms)) return undefined;
    return terms.map((t) => {
      if (t.adapter.kind === 'additive') return { lora: t.lora, delta: t.adapter.delta() };
      const delta = t.adapter.adapt(base);
      for (let i = 0; i < delta.length; i++) delta[i] -= base[i];
      return { lora: t.lora, delta };
    });
  }

  /** The factors of every term, when all are plain LoRA/LoCon: ΔW = Σ strength(i)·scaleᵢ·upᵢ·downᵢ. */
  lowRank(name: string): LowRankTerm[] | undefined {
    const terms = this.termsOf(name);
    const shape = this.checkpoint.weight(name).shape;
    const out: LowRankTerm[] = [];
    for (const t of terms) {
      if (t.adapter.kind !== 'additive' || !t.adapter.lowRank) return undefined;
      const f = t.adapter.lowRank();
      out.push({ ...f, lora: t.lora, downShape: shape.length > 2 ? [f.rank, ...shape.slice(1)] : [f.rank, f.down.length / f.rank] });
    }
    return out;
  }

  /** Logs each LoRA's strengths at this step (debug mode only). */
  logStep(step: number, totalSteps: number): void {
    this.log.debug(() =>
      this.loras
        .map((l) => {
          const s = resolveStrengths(l.spec);
          const at = (k: keyof typeof s) => `${k} ${+strengthAtStep(s[k], step, totalSteps).toFixed(4)}`;
          const te = this.checkpoint.config.family === 'sdxl' ? [at('te1'), at('te2')] : [at('te')];
          return `${basename(l.path)} step ${step + 1}/${totalSteps}: ${[...te, at('in'), at('mid'), at('out')].join(', ')}`;
        })
        .join('\n'),
    );
  }

  private termsOf(name: string): readonly Term[] {
    const terms = this.terms.get(name);
    if (!terms) throw new Error(`no LoRA changes ${name}`);
    return terms;
  }
}

function isLinear(terms: readonly Term[]): boolean {
  return terms.length === 1 || terms.every((t) => t.adapter.kind === 'additive');
}

/** Matches every module of `file` to the checkpoint and builds its adapters (shapes checked here). */
function matchModules(
  file: LoraFile,
  checkpoint: Checkpoint,
  targets: ModelTargets,
  label: string,
  add: (name: string, term: { module: LoraModule; adapter: Adapter }) => void,
): { matched: string[]; unmatched: string[] } {
  const matched: string[] = [];
  const unmatched: string[] = [];
  for (const module of file.modules) {
    const canonical = targets.resolve(module);
    if (!canonical) {
      unmatched.push(module.name);
      continue;
    }
    const weight = `${canonical}.weight`;
    const bias = `${canonical}.bias`;
    let adapters;
    try {
      adapters = moduleAdapters(module, file.data(module), checkpoint.weights.get(weight)?.shape, checkpoint.weights.get(bias)?.shape);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      throw new LoraMismatchError(label, `${err.message} (${weight}); the LoRA does not fit this model`, 'lora_shape_mismatch');
    }
    if (adapters.weight) add(weight, { module, adapter: adapters.weight });
    if (adapters.bias) add(bias, { module, adapter: adapters.bias });
    matched.push(module.name);
  }
  return { matched, unmatched };
}

function describeLoaded(lora: ActiveLora, targets: ModelTargets, loadMs: number, mapMs: number): string {
  const count = (keys: string[]) => {
    const m = new Map<string, number>();
    for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
    return [...m].map(([k, n]) => `${k} ${n}`).join(', ');
  };
  const groups = lora.file.modules
    .map((m) => targets.resolve(m))
    .filter((c): c is string => c !== undefined)
    .map((c) => {
      const place = targets.place(c);
      return place.group ?? place.component;
    });
  const s = resolveStrengths(lora.spec);
  const strengths = (['te', 'te1', 'te2', 'in', 'mid', 'out'] as const).map((k) => `${k}=${formatStrength(s[k])}`).join(' ');
  return [
    `${formatLoraSpec(lora.spec)} → ${lora.path}`,
    `  base ${lora.base.family ? familyName(lora.base.family) : 'unknown'} (${lora.base.decidedBy})`,
    `  families: ${count(lora.file.modules.map((m) => familyLabel(m)))}`,
    `  matched ${lora.matched.length}, unmatched ${lora.unmatched.length}${lora.unmatched.length ? `: ${summariseNames(lora.unmatched)}` : ''}`,
    `  groups: ${count(groups)}`,
    `  strengths: ${strengths}${lora.spec.blocks ? ` blocks=${lora.spec.blocks.join(',')}` : ''}`,
    `  timings: load ${loadMs.toFixed(1)} ms, match ${mapMs.toFixed(1)} ms`,
  ].join('\n');
}
