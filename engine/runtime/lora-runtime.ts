/**
 * Applies a LoraSet to one module session (the UNet or a text encoder) by one of three methods, and follows
 * per-step strength schedules during sampling.
 *
 * - fuse (default): the LoRA-touched weights become graph inputs whose values are changed in place; nothing
 *   else is kept. Removing or switching re-reads the originals from the checkpoint file, so the base comes
 *   back bit for bit (SD.Next's fuse subtracts and drifts).
 * - backup: the same, with the originals of touched weights kept in memory and copied back.
 * - dynamic: base weights stay untouched constants; each touched module gets a low-rank side branch
 *   y += up·(down·x) whose factors are fed at run time (strengths folded into `down`, re-fed when they move).
 *
 * Step schedules: re-merging every touched weight at every step would cost seconds per step, so in every
 * method a LoRA whose strength follows a schedule runs through a side branch (only its `down` factor is
 * re-fed, scaled); fuse/backup merge the LoRAs with constant strengths into the fed weight. Families that are not
 * low-rank (LoHa, LoKr, DoRA, GLoRA, (IA)^3, OFT, full) cannot branch: their weights are re-merged when their
 * strength changes.
 *
 * Which weights are inputs or carry branches only grows (a union over the LoRAs seen), so switching between
 * LoRAs with the usual targets never rebuilds the session; `reset` returns to the all-constant graph.
 */
import { resolveStrengths, type LoraSet } from '../lora/index.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import { branchInputs } from '../models/layers.ts';
import { readWeight } from '../models/weights.ts';
import { concatScaledDown, concatUp, type LowRankMerger, type ScaledFactors } from './low-rank-merge.ts';
import type { ModuleSession } from './module-session.ts';
import { ort } from './session.ts';

export type LoraApplyMethod = 'fuse' | 'backup' | 'dynamic';

/** How one touched weight is applied. */
interface Strategy {
  /** Fed as an input holding the merge of these LoRAs' terms (indices into set.loras). */
  readonly merged: ReadonlySet<number>;
  /** Run in the module's side branch (low-rank terms only). */
  readonly branched: ReadonlySet<number>;
}

/** What is baked into a fed weight: which files, at which strengths (per term; 0 for terms not merged). */
type Applied = { readonly files: string; readonly strengths: readonly number[] };

export class LoraRuntime {
  private method: LoraApplyMethod = 'fuse';
  private readonly inputs = new Set<string>();
  private readonly branches = new Set<string>();
  private readonly values = new Map<string, Float32Array>();
  private readonly originals = new Map<string, Float32Array>();
  private readonly applied = new Map<string, Applied>();
  /** What each branch was last fed: its `up` factors (LoRA files and terms) and the strengths folded into `down`. */
  private readonly branchFactors = new Map<string, string>();
  private readonly branchScales = new Map<string, string>();
  private strategies = new Map<string, Strategy>();
  private set: LoraSet | undefined;
  private step = { index: 0, total: 1 };

  constructor(
    private readonly module: ModuleSession,
    private readonly checkpoint: Checkpoint,
    /** Canonical-name prefix of this module's weights, e.g. `unet.` or `te1.`. */
    private readonly prefix: string,
    private readonly merger: LowRankMerger,
  ) {}

  /** Weights and their current fed values (for tests: proves what the session runs with). */
  fedWeights(): ReadonlyMap<string, Float32Array> {
    return this.values;
  }

  /** Applies `set` (undefined = no LoRA) at a step of a run; only what changed is recomputed. */
  async applySet(set: LoraSet | undefined, method: LoraApplyMethod, step = 0, total = 1): Promise<void> {
    if (method !== this.method && (this.inputs.size > 0 || this.branches.size > 0)) await this.reset();
    if (set !== this.set || method !== this.method) this.strategies = this.plan(set, method);
    this.method = method;
    this.set = set;
    this.step = { index: step, total };
    let grew = false;
    for (const [name, s] of this.strategies) {
      const module = name.slice(0, -'.weight'.length);
      if (s.merged.size > 0 && !this.inputs.has(name)) {
        this.inputs.add(name);
        grew = true;
      }
      if (s.branched.size > 0 && !this.branches.has(module)) {
        this.branches.add(module);
        grew = true;
      }
    }
    if (grew) await this.usePlan();
    for (const name of this.inputs) await this.updateInput(name);
    if (this.branches.size > 0) this.feedBranches();
    // Merged at constant strengths, the LoRAs' factors are not needed until something changes: not keeping
    // them holds fuse's memory near the model's own (a change reads them again from the file).
    if (set && method !== 'dynamic' && !hasSchedule(set)) for (const l of set.loras) l.file.dropValues();
  }

  /** Moves an applied set to another sampling step (per-step schedules); cheap when nothing changes. */
  async setStep(step: number, total: number): Promise<void> {
    if (this.set) await this.applySet(this.set, this.method, step, total);
  }

  /** Back to the plain constant graph: every LoRA removed, inputs and branches dropped. */
  async reset(): Promise<void> {
    this.inputs.clear();
    this.branches.clear();
    this.values.clear();
    this.originals.clear();
    this.applied.clear();
    this.branchFactors.clear();
    this.branchScales.clear();
    this.strategies.clear();
    this.set = undefined;
    await this.module.usePlan();
  }

  /** Decides, per touched weight of this module, which LoRAs are merged into it and which run as a branch. */
  private plan(set: LoraSet | undefined, method: LoraApplyMethod): Map<string, Strategy> {
    const plan = new Map<string, Strategy>();
    if (!set) return plan;
    for (const name of set.names()) {
      if (!name.startsWith(this.prefix)) continue;
      const target = set.target(name);
      // A LoRA counts as scheduled on this weight only if the strength that applies here follows a schedule.
      const key = target.place.component === 'unet' ? (target.place.group ?? 'unet') : target.place.component;
      const scheduled = new Set(target.terms.map((t) => t.lora).filter((l) => typeof resolveStrengths(set.loras[l].spec)[key] === 'object'));
      // A LoRA held at 0 here (e.g. te=0, or a block group at 0) leaves this weight, and the graph, alone.
      const loras = new Set(target.terms.map((t) => t.lora).filter((l) => scheduled.has(l) || set.strength(l, name) !== 0));
      if (loras.size === 0) continue;
      const canBranch = name.endsWith('.weight') && target.lowRank;
      if (method === 'dynamic' && canBranch) plan.set(name, { merged: new Set(), branched: loras });
      else if (canBranch && [...loras].some((l) => scheduled.has(l))) {
        plan.set(name, { merged: new Set([...loras].filter((l) => !scheduled.has(l))), branched: new Set([...loras].filter((l) => scheduled.has(l))) });
      } else plan.set(name, { merged: loras, branched: new Set() });
    }
    return plan;
  }

  private async usePlan(): Promise<void> {
    const inputs = new Set(this.inputs);
    const branches = new Set(this.branches);
    const key = `lora:${[...inputs].sort().join(',')}|${[...branches].sort().join(',')}`;
    await this.module.usePlan({
      key,
      plan: { weightMode: (name) => (inputs.has(name) ? 'input' : 'const'), loraBranch: (module) => branches.has(module) },
    });
    // A rebuilt session needs every fed value again.
    for (const [name, value] of this.values) this.feed(name, value);
    this.branchFactors.clear();
    this.branchScales.clear();
  }

  private base(name: string): Float32Array {
    if (this.method === 'backup') {
      let original = this.originals.get(name);
      if (!original) {
        original = readWeight(this.checkpoint.weight(name));
        this.originals.set(name, original);
      }
      return Float32Array.from(original);
    }
    // fuse keeps no copy: the original is still in the checkpoint file.
    return readWeight(this.checkpoint.weight(name));
  }

  /** Strength of each term of `name` at the current step; 0 for terms not merged into the fed weight. */
  private mergedStrengths(name: string, merged: ReadonlySet<number>): number[] {
    const set = this.set!;
    return set.target(name).terms.map((t) => (merged.has(t.lora) ? set.strength(t.lora, name, this.step.index, this.step.total) : 0));
  }

  private async updateInput(name: string): Promise<void> {
    const set = this.set;
    const strategy = this.strategies.get(name);
    const merging = set && strategy && strategy.merged.size > 0;
    const files = merging ? filesKey(set) : '';
    const strengths = merging ? this.mergedStrengths(name, strategy.merged) : [];
    const before = this.applied.get(name);
    if (before && before.files === files && sameNumbers(before.strengths, strengths) && this.values.has(name)) return;
    // Always from the original weight, never by subtracting what was added: no drift, ever.
    let value: Float32Array;
    if (!merging) value = this.base(name);
    else if (set.target(name).lowRank) value = await this.addLowRank(this.base(name), name, strengths);
    else value = set.mergedWeight(name, this.base(name), this.step.index, this.step.total);
    this.values.set(name, value);
    this.applied.set(name, { files, strengths });
    this.feed(name, value);
  }

  private async addLowRank(base: Float32Array, name: string, strengths: readonly number[]): Promise<Float32Array> {
    const terms = this.set!.lowRank(name)!;
    const rows = this.checkpoint.weight(name).shape[0];
    const scaled: ScaledFactors[] = terms.map((t, i) => ({ up: t.up, down: t.down, rank: t.rank, scale: t.scale * strengths[i] }));
    return this.merger.add(base, rows, scaled);
  }

  private feed(name: string, value: Float32Array): void {
    this.module.setFeeds({ [`weight:${name}`]: new ort.Tensor('float32', value, [...this.checkpoint.weight(name).shape]) });
  }

  /**
   * Branch factors, concatenated over the branched LoRAs (a lone LoRA's are fed as read, no copy), once per
   * LoRA set; `scale` (each LoRA's strength × alpha/rank over its rank rows) whenever a strength changes, so a
   * step schedule costs a few small tensors per step. Idle branches get zero rank-1 factors.
   */
  private feedBranches(): void {
    const set = this.set;
    const files = set ? filesKey(set) : '';
    const feeds: Record<string, ort.Tensor> = {};
    for (const module of this.branches) {
      const names = branchInputs(module);
      const name = `${module}.weight`;
      const shape = this.checkpoint.weight(name).shape;
      const conv = shape.length === 4;
      const branched = this.strategies.get(name)?.branched;
      const terms = set && branched?.size ? set.lowRank(name)!.filter((t) => branched.has(t.lora)) : [];
      const rank = Math.max(1, terms.reduce((r, t) => r + t.rank, 0));
      const scales = terms.map((t) => set!.strength(t.lora, name, this.step.index, this.step.total) * t.scale);
      const factorsKey = `${files}#${terms.map((t) => t.lora).join(',')}`;
      if (this.branchFactors.get(module) !== factorsKey) {
        const cols = shape.slice(1).reduce((a, b) => a * b, 1);
        const lone = terms.length === 1 ? terms[0] : undefined;
        const up = lone?.up ?? concatUp(terms, shape[0], rank);
        const down = lone?.down ?? concatScaledDown(terms, terms.map(() => 1), cols, rank);
        feeds[names.up] = new ort.Tensor('float32', up, conv ? [shape[0], rank, 1, 1] : [shape[0], rank]);
        feeds[names.down] = new ort.Tensor('float32', down, conv ? [rank, shape[1], shape[2], shape[3]] : [rank, cols]);
        this.branchFactors.set(module, factorsKey);
        this.branchScales.delete(module);
      }
      const scaleKey = scales.join(',');
      if (this.branchScales.get(module) !== scaleKey) {
        const perRow = new Float32Array(rank);
        let row = 0;
        terms.forEach((t, i) => perRow.fill(scales[i], row, (row += t.rank)));
        feeds[names.scale] = new ort.Tensor('float32', perRow, conv ? [rank, 1, 1] : [rank]);
        this.branchScales.set(module, scaleKey);
      }
    }
    this.module.setFeeds(feeds);
  }
}

function hasSchedule(set: LoraSet): boolean {
  return set.loras.some((l) => Object.values(resolveStrengths(l.spec)).some((v) => typeof v === 'object'));
}

/** The LoRA files of a set as read (path and stamp), so a re-saved file never passes for the old one. */
function filesKey(set: LoraSet): string {
  return set.loras.map((l) => `${l.path}@${l.file.stamp}`).join('|');
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
