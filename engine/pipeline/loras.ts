/**
 * LoRAs on a loaded model for one generation: apply the UNet's set before sampling and move it along each
 * step's strengths; apply the text encoders' set before encoding (and again per step when a `te` schedule
 * changes the conditioning).
 */
import type { LoraSpec } from '../lora/index.ts';
import type { LoadedModel } from '../runtime/loaded-model.ts';
import type { LoraApplyMethod } from '../runtime/lora-runtime.ts';

export interface LoraContext {
  readonly specs: readonly LoraSpec[];
  readonly lorasDir: string;
  readonly method: LoraApplyMethod;
}

/** Applies the UNet LoRAs at the run's first step and returns the per-step update for the sampler's beforeStep hook. */
export async function prepareUnetLoras(
  model: LoadedModel,
  loras: LoraContext | undefined,
  firstStep: number,
  totalSteps: number,
): Promise<(step: number, total: number) => Promise<void>> {
  const set = loras ? model.loraSet(loras.specs, loras.lorasDir) : undefined;
  const runtime = model.loras('unet');
  await runtime.applySet(set, loras?.method ?? 'fuse', firstStep, totalSteps);
  if (!set) return async () => {};
  return async (step, total) => {
    set.logStep(step, total);
    await runtime.setStep(step, total);
  };
}

/** Applies the text-encoder LoRAs (at a step of a run, for `te` schedules) to every text encoder. */
export async function applyTextEncoderLoras(model: LoadedModel, loras: LoraContext | undefined, step = 0, total = 1): Promise<void> {
  const set = loras ? model.loraSet(loras.specs, loras.lorasDir) : undefined;
  for (const encoder of model.textEncoders()) await model.loras(encoder.prefix).applySet(set, loras?.method ?? 'fuse', step, total);
}

/**
 * The text-encoder strengths of these LoRAs at a step, as a key: equal keys give equal conditioning, so a
 * `te` schedule re-encodes only when its value moves.
 */
export function textEncoderStrengthKey(model: LoadedModel, loras: LoraContext | undefined, step: number, total: number): string {
  if (!loras || loras.specs.length === 0) return '';
  const set = model.loraSet(loras.specs, loras.lorasDir)!;
  const prefixes = model.textEncoders().map((e) => `${e.prefix}.`);
  const values: number[] = [];
  for (const name of set.names()) {
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    for (const t of set.target(name).terms) values.push(set.strength(t.lora, name, step, total));
  }
  return values.join(',');
}
