import { InvalidInputError } from '../../engine/errors.ts';
import { latentPreviewRgb, SD15_LATENT_RGB, SDXL_LATENT_RGB } from '../../engine/image/index.ts';
import { encodePrompt, type Conditioning } from '../../engine/pipeline/conditioning.ts';
import { prepareUnetLoras, textEncoderStrengthKey } from '../../engine/pipeline/loras.ts';
import { sampleLatent } from '../../engine/pipeline/sample.ts';
import { SAMPLER_NAMES, SCHEDULER_NAMES } from '../../engine/sampling/index.ts';
import { defineNode, type InputSpec, type NodeContext } from '../types.ts';
import type { NodeEnv } from '../env.ts';
import type { ConditioningEntry, ConditioningValue, LatentValue, ModelValue } from '../values.ts';
import { clipLoras } from './conditioning.ts';

const MAX_SEED = 2n ** 64n - 1n;

const common = {
  steps: { kind: 'INT', default: 20, min: 1, max: 10000, tooltip: 'Denoising steps.' },
  cfg: { kind: 'FLOAT', default: 8, min: 0, max: 100, step: 0.1, round: 0.01, tooltip: 'Classifier-free guidance scale.' },
  sampler_name: { kind: 'COMBO', options: SAMPLER_NAMES, tooltip: 'The sampling algorithm.' },
  scheduler: { kind: 'COMBO', options: SCHEDULER_NAMES, default: 'normal', tooltip: 'How noise levels are spaced over the steps.' },
  positive: { kind: 'SOCKET', type: 'CONDITIONING' },
  negative: { kind: 'SOCKET', type: 'CONDITIONING' },
  latent_image: { kind: 'SOCKET', type: 'LATENT' },
} satisfies Record<string, InputSpec>;

interface SamplerParams {
  model: ModelValue;
  seed: bigint;
  steps: number;
  cfg: number;
  sampler: string;
  scheduler: string;
  positive: ConditioningValue;
  negative: ConditioningValue;
  latent: LatentValue;
  denoise?: number;
  startStep?: number;
  endStep?: number;
  addNoise?: boolean;
  returnWithLeftoverNoise?: boolean;
}

/** The inputs KSampler and KSamplerAdvanced share, typed. */
function commonParams(inputs: Record<string, unknown>): Omit<SamplerParams, 'seed'> {
  return {
    model: inputs.model as ModelValue,
    steps: inputs.steps as number,
    cfg: inputs.cfg as number,
    sampler: inputs.sampler_name as string,
    scheduler: inputs.scheduler as string,
    positive: inputs.positive as ConditioningValue,
    negative: inputs.negative as ConditioningValue,
    latent: inputs.latent_image as LatentValue,
  };
}

function single(value: ConditioningValue, which: string) {
  if (value.length === 0) throw new InvalidInputError(`the ${which} conditioning is empty`);
  return value[0];
}

/**
 * Conditioning for each step when a text-encoder LoRA strength follows a schedule: the prompt is encoded
 * again whenever the encoders' strengths move (cached per strength, so only distinct values cost a run).
 */
function scheduledConditioning(entry: ConditioningEntry, env: NodeEnv): ((step: number, total: number) => Promise<Conditioning>) | undefined {
  const loras = clipLoras(entry.clip, env);
  if (!loras) return undefined;
  const model = entry.clip.model;
  const cache = new Map<string, Conditioning>([[textEncoderStrengthKey(model, loras, 0, 1), entry.cond]]);
  return async (step, total) => {
    const key = textEncoderStrengthKey(model, loras, step, total);
    let cond = cache.get(key);
    if (!cond) {
      cond = await encodePrompt(model, entry.text, { lastLayer: entry.clip.lastLayer, loras, step, totalSteps: total, emphasis: env.settings.emphasis });
      cache.set(key, cond);
    }
    return cond;
  };
}

async function runSampler(p: SamplerParams, ctx: NodeContext): Promise<LatentValue> {
  const { model } = p.model;
  const latent = p.latent.samples;
  const factors = model.family === 'sdxl' ? SDXL_LATENT_RGB : SD15_LATENT_RGB;
  const previewEvery = ctx.env.settings.previewEvery;
  const env = ctx.env;
  const unetLoras = p.model.loras.length ? { specs: p.model.loras, lorasDir: env.folders.models.loras, method: env.settings.loraApplyMethod } : undefined;
  // A KSamplerAdvanced stage samples steps [start, end) of a `steps`-step run: schedules follow the whole run.
  const runStep = (index: number, total: number): [number, number] => (p.startStep === undefined ? [index, total] : [p.startStep + index, p.steps]);
  const stepLoras = await prepareUnetLoras(model, unetLoras, ...runStep(0, p.steps));
  const positive = single(p.positive, 'positive');
  const negative = single(p.negative, 'negative');
  const positiveAt = scheduledConditioning(positive, env);
  const negativeAt = scheduledConditioning(negative, env);
  const samples = await sampleLatent({
    model,
    positive: positive.cond,
    negative: negative.cond,
    conditioningAt:
      positiveAt || negativeAt
        ? async (step, total) => ({
            positive: positiveAt ? await positiveAt(...runStep(step, total)) : positive.cond,
            negative: negativeAt ? await negativeAt(...runStep(step, total)) : negative.cond,
          })
        : undefined,
    latent: { ...latent, batchIndex: p.latent.batchIndex },
    seed: p.seed,
    steps: p.steps,
    cfg: p.cfg,
    sampler: p.sampler,
    scheduler: p.scheduler,
    denoise: p.denoise,
    startStep: p.startStep,
    endStep: p.endStep,
    addNoise: p.addNoise,
    returnWithLeftoverNoise: p.returnWithLeftoverNoise,
    hooks: {
      beforeStep: async (index, total) => {
        ctx.checkInterrupt();
        await stepLoras(...runStep(index, total));
      },
      onStep: (step) => {
        const last = step.index + 1 === step.total;
        const withPreview = previewEvery > 0 && (step.index % previewEvery === previewEvery - 1 || last);
        const [, c, h, w] = latent.shape;
        const preview = withPreview ? latentPreviewRgb(step.denoised.subarray(0, c * h * w), [1, c, h, w], factors) : undefined;
        ctx.progress(step.index + 1, step.total, preview);
      },
    },
  });
  return { samples: { shape: latent.shape, data: samples }, batchIndex: p.latent.batchIndex };
}

export const KSampler = defineNode({
  name: 'KSampler',
  displayName: 'KSampler',
  category: 'sampling',
  description: 'Denoises a latent with the model, guided by the positive and negative conditioning.',
  inputs: {
    model: { kind: 'SOCKET', type: 'MODEL' },
    seed: { kind: 'INT', default: 0, min: 0, max: MAX_SEED, seed: true, tooltip: 'Seed of the initial noise (same seed, same image).' },
    ...common,
    denoise: { kind: 'FLOAT', default: 1, min: 0, max: 1, step: 0.01, tooltip: 'How much of the schedule to run (below 1 for image-to-image).' },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  async execute(inputs, ctx) {
    const latent = await runSampler({ ...commonParams(inputs), seed: inputs.seed as bigint, denoise: inputs.denoise as number }, ctx);
    return { outputs: [latent] };
  },
});

export const KSamplerAdvanced = defineNode({
  name: 'KSamplerAdvanced',
  displayName: 'KSampler (Advanced)',
  category: 'sampling',
  description: 'KSampler with control over noise and the range of steps run (for multi-stage sampling).',
  inputs: {
    model: { kind: 'SOCKET', type: 'MODEL' },
    add_noise: { kind: 'COMBO', options: ['enable', 'disable'] },
    noise_seed: { kind: 'INT', default: 0, min: 0, max: MAX_SEED, seed: true },
    ...common,
    start_at_step: { kind: 'INT', default: 0, min: 0, max: 10000 },
    end_at_step: { kind: 'INT', default: 10000, min: 0, max: 10000 },
    return_with_leftover_noise: { kind: 'COMBO', options: ['disable', 'enable'] },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  async execute(inputs, ctx) {
    const latent = await runSampler(
      {
        ...commonParams(inputs),
        seed: inputs.noise_seed as bigint,
        startStep: inputs.start_at_step as number,
        endStep: inputs.end_at_step as number,
        addNoise: inputs.add_noise === 'enable',
        returnWithLeftoverNoise: inputs.return_with_leftover_noise === 'enable',
      },
      ctx,
    );
    return { outputs: [latent] };
  },
});
