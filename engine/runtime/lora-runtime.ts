/**
 * Applies a LoraSet to one module session (the UNet or a text encoder) by one of three methods, and follows
 * per-step strength schedules during sampling.
 *
 * - fuse (default): the LoRA-touched weights become graph inputs whose values are changed in place; nothing
 *   else is kept. Removing or switching re-reads the originals from the checkpoint file, so the base comes
 *   back bit for bit (SD.Next's fuse subtracts and drifts).
 * - backup: the same, with the originals of touched weights kept in memory and copied back.
 * - dynamic: base weights stay untouched constants; each touched module gets a low-rank side branch
 *   y += up·(scale ⊙ down·x) whose factors and per-step scales are fed at run time. Families that are not
 *   low-rank (LoHa, LoKr, DoRA, GLoRA, (IA)^3, OFT, full) fall back to a fed merged weight for that module.
 *
 * Which weights are inputs or carry branches only grows (a union over the LoRAs seen), so switching between
 * LoRAs with the usual targets never rebuilds the session; `reset` returns to the all-constant graph.
 */
import type { LoraSet } from '../lora/index.ts';
import type { Checkpoint } from '../models/checkpoint.ts';
import { branchInputs } from '../models/layers.ts';
import { readWeight } from '../models/weights.ts';
import type { LowRankMerger, ScaledFactors } from './low-rank-merge.ts';
import type { ModuleSession } from './module-session.ts';
import { ort } from './session.ts';

export type LoraApplyMethod = 'fuse' | 'backup' | 'dynamic';

/** The strengths each LoRA has on one weight at the current step (what is baked into its fed value). */
type Applied = { readonly files: string; readonly strengths: readonly number[] };

export class LoraRuntime {
  private method: LoraApplyMethod = 'fuse';
  private readonly inputs = new Set<string>();
  private readonly branches = new Set<string>();
  private readonly values = new Map<string, Float32Array>();
  private readonly originals = new Map<string, Float32Array>();
  private readonly applied = new Map<string, Applied>();
  /** Which LoRA files' factors each branch was last fed (factors are re-fed only when those change). */
  private readonly branchFactors = new Map<string, string>();
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

  get appliedSet(): LoraSet | undefined {
    return this.set;
  }

  /** Applies `set` (undefined = no LoRA) at a step of a run; only what changed is recomputed. */
  async applySet(set: LoraSet | undefined, method: LoraApplyMethod, step = 0, total = 1): Promise<void> {
    if (method !== this.method && (this.inputs.size > 0 || this.branches.size > 0)) await this.reset();
    this.method = method;
    this.set = set;
    this.step = { index: step, total };
    const targets = (set?.names() ?? []).filter((n) => n.startsWith(this.prefix));
    const wanted = new Set(targets);
    let grew = false;
    for (const name of targets) {
      const viaBranch = method === 'dynamic' && name.endsWith('.weight') && set!.target(name).lowRank;
      const group = viaBranch ? this.branches : this.inputs;
      const key = viaBranch ? name.slice(0, -'.weight'.length) : name;
      if (!group.has(key)) {
        group.add(key);
        grew = true;
      }
    }
    if (grew) await this.usePlan();
    for (const name of this.inputs) await this.updateInput(name, wanted.has(name) ? set : undefined);
    if (this.branches.size > 0) this.feedBranches(set, wanted);
  }

  /** Moves an applied set to another sampling step (per-step schedules); cheap when nothing changes. */
  async setStep(step: number, total: number): Promise<void> {
    if (!this.set) return;
    await this.applySet(this.set, this.method, step, total);
  }

  /** Back to the plain constant graph: every LoRA removed, inputs and branches dropped. */
  async reset(): Promise<void> {
    this.inputs.clear();
    this.branches.clear();
    this.values.clear();
    this.originals.clear();
    this.applied.clear();
    this.branchFactors.clear();
    this.set = undefined;
    await this.module.usePlan();
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

  private strengths(set: LoraSet, name: string): number[] {
    return set.target(name).terms.map((t) => set.strength(t.lora, name, this.step.index, this.step.total));
  }

  private async updateInput(name: string, set: LoraSet | undefined): Promise<void> {
    const files = set ? set.loras.map((l) => l.path).join('|') : '';
    const strengths = set ? this.strengths(set, name) : [];
    const before = this.applied.get(name);
    if (before && before.files === files && sameNumbers(before.strengths, strengths) && this.values.has(name)) return;
    let value: Float32Array;
    const target = set?.target(name);
    const current = this.values.get(name);
    if (
      this.method === 'fuse' &&
      set &&
      target?.lowRank &&
      current &&
      before?.files === files &&
      before.strengths.length === strengths.length
    ) {
      // Same LoRAs, other strengths (a schedule step): move the fused weight by the difference, in place.
      value = await this.addLowRank(current, name, set, strengths.map((s, i) => s - before.strengths[i]));
    } else if (!set) {
      value = this.base(name);
    } else if (target!.lowRank) {
      value = await this.addLowRank(this.base(name), name, set, strengths);
    } else {
      value = set.mergedWeight(name, this.base(name), this.step.index, this.step.total);
    }
    this.values.set(name, value);
    this.applied.set(name, { files, strengths });
    this.feed(name, value);
  }

  private async addLowRank(base: Float32Array, name: string, set: LoraSet, strengths: readonly number[]): Promise<Float32Array> {
    const terms = set.lowRank(name)!;
    const rows = this.checkpoint.weight(name).shape[0];
    const scaled: ScaledFactors[] = terms.map((t, i) => ({ up: t.up, down: t.down, rank: t.rank, scale: t.scale * strengths[i] }));
    return this.merger.add(base, rows, scaled);
  }

  private feed(name: string, value: Float32Array): void {
    this.module.setFeeds({ [`weight:${name}`]: new ort.Tensor('float32', value, [...this.checkpoint.weight(name).shape]) });
  }

  /**
   * Branch factors (concatenated over LoRAs, fed once per LoRA set) and this step's per-rank scales (fed every
   * step); idle branches get zero rank-1 factors.
   */
  private feedBranches(set: LoraSet | undefined, wanted: ReadonlySet<string>): void {
    const files = set ? set.loras.map((l) => l.path).join('|') : '';
    const feeds: Record<string, ort.Tensor> = {};
    for (const module of this.branches) {
      const names = branchInputs(module);
      const name = `${module}.weight`;
      const shape = this.checkpoint.weight(name).shape;
      const conv = shape.length === 4;
      const terms = set && wanted.has(name) && set.target(name).lowRank ? set.lowRank(name)! : [];
      const rank = Math.max(1, terms.reduce((r, t) => r + t.rank, 0));
      const factorsKey = `${files}#${rank}`;
      if (this.branchFactors.get(module) !== factorsKey) {
        const cols = shape.slice(1).reduce((a, b) => a * b, 1);
        const up = new Float32Array(shape[0] * rank);
        const down = new Float32Array(rank * cols);
        let offset = 0;
        for (const t of terms) {
          for (let r = 0; r < shape[0]; r++) up.set(t.up.subarray(r * t.rank, (r + 1) * t.rank), r * rank + offset);
          down.set(t.down, offset * cols);
          offset += t.rank;
        }
        feeds[names.down] = new ort.Tensor('float32', down, conv ? [rank, shape[1], shape[2], shape[3]] : [rank, cols]);
        feeds[names.up] = new ort.Tensor('float32', up, conv ? [shape[0], rank, 1, 1] : [shape[0], rank]);
        this.branchFactors.set(module, factorsKey);
      }
      const scale = new Float32Array(rank);
      let offset = 0;
      for (const t of terms) {
        scale.fill(set!.strength(t.lora, name, this.step.index, this.step.total) * t.scale, offset, offset + t.rank);
        offset += t.rank;
      }
      feeds[names.scale] = new ort.Tensor('float32', scale, conv ? [1, rank, 1, 1] : [rank]);
    }
    this.module.setFeeds(feeds);
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
