/**
 * LoRA benchmark (issue 3) on the SD1.5-shaped checkpoint with generated rank-32 kohya LoRAs on the usual
 * targets (text encoder + UNet) and a LoCon variant: per apply method, the time to apply, switch and remove,
 * whether removal restores the base bit for bit, the extra time per UNet step with 1 and 3 LoRAs and with a
 * schedule changing every step, and peak RSS against the model's weight bytes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeKohyaLora } from '../engine/lora/index.ts';
import { openCheckpoint } from '../engine/models/checkpoint.ts';
import { ensureSd15ShapedModel, modelFolders } from '../engine/models/embedded.ts';
import { elementCount } from '../engine/models/weights.ts';
import type { LoraApplyMethod } from '../engine/runtime/lora-runtime.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** Image size of the per-step timings: below 512 to keep the run short (the switch goal uses the engine's 512x512 step). */
const STEP_SIZE = 256;

interface ChildResult {
  method: LoraApplyMethod;
  loadSeconds: number;
  firstApplySeconds: number;
  switchSeconds: number;
  removeSeconds: number;
  reapplySeconds: number;
  restoredBitForBit: boolean;
  stepSeconds: { base: number; oneLora: number; oneScheduled: number; threeLoras: number; threeScheduled: number };
  rss: { base: number; applied: number; threeApplied: number; threeScheduled: number; peak: number };
}

export interface LoraBenchResult {
  size: number;
  weightBytes: number;
  /** The 512x512 batch-2 UNet step the switch time is compared with; null when the engine benchmark did not time one. */
  referenceStepSeconds: number | null;
  methods: (ChildResult & { scheduleOverheadOne: number; scheduleOverhead: number; rssRatio: number; peakRssRatio: number; switchVsStep: number | null })[];
  /** null: not measured in this run (why in `notMeasured`). */
  goals: Record<string, boolean | null>;
  notMeasured: Record<string, string>;
}

const SWITCH_GOAL = 'switching costs less than one 512x512 UNet step (fuse)';

export async function benchLora(modelsDir: string, workDir: string, referenceStepSeconds: number | null, steps = 2): Promise<LoraBenchResult> {
  const checkpoint = ensureSd15ShapedModel(modelFolders(modelsDir));
  mkdirSync(workDir, { recursive: true });
  const ckpt = openCheckpoint(checkpoint);
  const loras = [
    { file: join(workDir, 'bench-lora-a.safetensors'), seed: 1, locon: false },
    { file: join(workDir, 'bench-lora-b.safetensors'), seed: 2, locon: false },
    { file: join(workDir, 'bench-locon-c.safetensors'), seed: 3, locon: true },
  ];
  for (const l of loras) if (!existsSync(l.file)) writeKohyaLora(ckpt, l.file, { rank: 32, seed: l.seed, locon: l.locon });
  const weightBytes = [...ckpt.names('unet.'), ...ckpt.names('te.')].reduce((n, k) => n + elementCount(ckpt.weight(k)) * 4, 0);
  ckpt.close();
  const methods: LoraBenchResult['methods'] = [];
  for (const method of ['fuse', 'backup', 'dynamic'] as LoraApplyMethod[]) {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'lora-child.ts'), method, checkpoint, String(STEP_SIZE), String(steps), ...loras.map((l) => l.file)], {
      encoding: 'utf8',
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
    methods.push({
      ...r,
      scheduleOverheadOne: r.stepSeconds.oneScheduled / r.stepSeconds.oneLora - 1,
      scheduleOverhead: r.stepSeconds.threeScheduled / r.stepSeconds.threeLoras - 1,
      // While LoRAs are applied and sampling (the highest of the steady states measured).
      rssRatio: Math.max(r.rss.applied, r.rss.threeApplied, r.rss.threeScheduled) / weightBytes,
      peakRssRatio: r.rss.peak / weightBytes,
      switchVsStep: referenceStepSeconds === null ? null : r.switchSeconds / referenceStepSeconds,
    });
  }
  const by = (m: LoraApplyMethod) => methods.find((x) => x.method === m)!;
  const fuseSwitch = by('fuse').switchVsStep;
  return {
    size: STEP_SIZE,
    weightBytes,
    referenceStepSeconds,
    methods,
    goals: {
      [SWITCH_GOAL]: fuseSwitch === null ? null : fuseSwitch < 1,
      'a step schedule adds <= 10% per step (fuse, 1 LoRA)': by('fuse').scheduleOverheadOne <= 0.1,
      'a step schedule adds <= 10% per step (fuse, 3 LoRAs)': by('fuse').scheduleOverhead <= 0.1,
      'fuse and dynamic RSS with LoRAs applied <= 1.15x weight bytes': by('fuse').rssRatio <= 1.15 && by('dynamic').rssRatio <= 1.15,
      'removal restores bit for bit (every method)': methods.every((m) => m.restoredBitForBit),
    },
    notMeasured: fuseSwitch === null ? { [SWITCH_GOAL]: 'no 512x512 step reference: run with the engine benchmark at size 512' } : {},
  };
}

export function printLoraTable(r: LoraBenchResult): void {
  console.log(`\nLoRA (SD1.5-shaped, rank-32 kohya LoRAs + a LoCon; UNet + text encoder weights ${(r.weightBytes / 1e9).toFixed(2)} GB fp32; steps at ${r.size}x${r.size}, batch 2)`);
  console.table(
    Object.fromEntries(
      r.methods.map((m) => [
        m.method,
        {
          'apply s': m.reapplySeconds.toFixed(2),
          'first apply s': m.firstApplySeconds.toFixed(2),
          'switch s': m.switchSeconds.toFixed(2),
          'switch / 512 step': m.switchVsStep?.toFixed(2) ?? 'n/a',
          'remove s': m.removeSeconds.toFixed(2),
          'bit-exact': m.restoredBitForBit,
          'step base s': m.stepSeconds.base.toFixed(2),
          '1 LoRA': `${((m.stepSeconds.oneLora / m.stepSeconds.base - 1) * 100).toFixed(1)}%`,
          'schedule + (1)': `${(m.scheduleOverheadOne * 100).toFixed(1)}%`,
          '3 LoRAs': `${((m.stepSeconds.threeLoras / m.stepSeconds.base - 1) * 100).toFixed(1)}%`,
          'schedule + (3)': `${(m.scheduleOverhead * 100).toFixed(1)}%`,
          RSS: `${m.rssRatio.toFixed(2)}x`,
          'peak RSS': `${m.peakRssRatio.toFixed(2)}x`,
        },
      ]),
    ),
  );
  for (const [goal, ok] of Object.entries(r.goals)) {
    console.log(ok === null ? `n/a  ${goal} (${r.notMeasured[goal]})` : `${ok ? 'MET ' : 'MISS'} ${goal}`);
  }
}
