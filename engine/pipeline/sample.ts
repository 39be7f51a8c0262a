/**
 * KSampler on a loaded model: torch-identical initial noise from the seed, the UNet run with classifier-free
 * guidance (positive and negative in one batch), ComfyUI's samplers and schedulers.
 */
import { InvalidInputError } from '../errors.ts';
import { prepareNoise, TorchGenerator } from '../noise/index.ts';
import type { LoadedModel } from '../runtime/loaded-model.ts';
import { ort } from '../runtime/session.ts';
import { cfgDenoiser, DiscreteModelSampling, sample, type GuidedModel, type SamplingHooks } from '../sampling/index.ts';
import type { FloatTensor } from '../tensor/tensor.ts';
import type { Conditioning } from './conditioning.ts';

export interface Latent extends FloatTensor {
  /** Which draw of the seed's noise each batch entry uses (ComfyUI's batch_index). */
  readonly batchIndex?: readonly number[];
}

export interface SampleRequest {
  readonly model: LoadedModel;
  readonly positive: Conditioning;
  readonly negative: Conditioning;
  readonly latent: Latent;
  readonly seed: bigint;
  readonly steps: number;
  readonly cfg: number;
  readonly sampler: string;
  readonly scheduler: string;
  readonly denoise?: number;
  readonly startStep?: number;
  readonly endStep?: number;
  readonly addNoise?: boolean;
  readonly returnWithLeftoverNoise?: boolean;
  readonly hooks?: SamplingHooks;
  /**
   * Per-step conditioning (a text-encoder LoRA step schedule re-encodes the prompt); called before each step.
   */
  readonly conditioningAt?: (step: number, total: number) => Promise<{ positive: Conditioning; negative: Conditioning }>;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Repeats a context's tokens to `tokens` (a multiple of its length): attention over k copies equals attention over one. */
function repeatTokens(c: Conditioning, tokens: number): Float32Array {
  if (c.tokens === tokens) return c.context;
  const out = new Float32Array(tokens * c.width);
  for (let i = 0; i < tokens / c.tokens; i++) out.set(c.context, i * c.context.length);
  return out;
}

/** Batch inputs for [negative × B, positive × B] (or positive only), ComfyUI's cond/uncond batching. */
function conditioningBatch(conds: readonly Conditioning[], perCond: number): { context: Float32Array; tokens: number; width: number; pooled?: Float32Array } {
  const tokens = conds.reduce((l, c) => (l * c.tokens) / gcd(l, c.tokens), conds[0].tokens);
  const width = conds[0].width;
  if (conds.some((c) => c.width !== width)) throw new InvalidInputError('positive and negative conditioning come from different text encoders');
  const context = new Float32Array(conds.length * perCond * tokens * width);
  const pooledWidth = conds[0].pooled?.length ?? 0;
  const pooled = pooledWidth ? new Float32Array(conds.length * perCond * pooledWidth) : undefined;
  conds.forEach((c, ci) => {
    const repeated = repeatTokens(c, tokens);
    for (let b = 0; b < perCond; b++) {
      context.set(repeated, (ci * perCond + b) * tokens * width);
      if (pooled && c.pooled) pooled.set(c.pooled, (ci * perCond + b) * pooledWidth);
    }
  });
  return { context, tokens, width, pooled };
}

export async function sampleLatent(req: SampleRequest): Promise<Float32Array> {
  const { model, latent } = req;
  const unetConfig = model.config.unet;
  if (!unetConfig) throw new InvalidInputError(`${model.checkpoint.path} has no UNet`);
  const shape = latent.shape;
  const [batch, channels, h, w] = shape;
  if (shape.length !== 4 || channels !== unetConfig.inChannels) {
    throw new InvalidInputError(`the latent is [${shape.join(', ')}] but this model needs ${unetConfig.inChannels} latent channels`);
  }
  const unet = model.unet();
  const modelSampling = new DiscreteModelSampling({ prediction: model.config.prediction ?? 'eps' });
  let conds = { positive: req.positive, negative: req.negative };
  const sample1 = batch * channels * h * w;

  const guided: GuidedModel = async (input, timestep, withUncond) => {
    const list = withUncond ? [conds.negative, conds.positive] : [conds.positive];
    const copies = list.length;
    const batched = conditioningBatch(list, batch);
    const sampleIn = new Float32Array(copies * sample1);
    for (let i = 0; i < copies; i++) sampleIn.set(input, i * sample1);
    const feeds: Record<string, ort.Tensor> = {
      sample: new ort.Tensor('float32', sampleIn, [copies * batch, channels, h, w]),
      timestep: new ort.Tensor('float32', new Float32Array(copies * batch).fill(timestep), [copies * batch]),
      encoder_hidden_states: new ort.Tensor('float32', batched.context, [copies * batch, batched.tokens, batched.width]),
    };
    if (unetConfig.admInChannels > 0) {
      if (!batched.pooled) throw new InvalidInputError('SDXL needs a pooled text embedding: encode the prompt with an SDXL text encoder');
      // SDXL size conditioning: original size, crop (0, 0), target size = the image being made.
      const ids = [h * 8, w * 8, 0, 0, h * 8, w * 8];
      feeds.text_embeds = new ort.Tensor('float32', batched.pooled, [copies * batch, batched.pooled.length / (copies * batch)]);
      feeds.time_ids = new ort.Tensor('float32', Float32Array.from({ length: copies * batch * 6 }, (_, i) => ids[i % 6]), [copies * batch, 6]);
    }
    const out = (await unet.run(feeds)).out.data as Float32Array;
    return withUncond ? { uncond: out.slice(0, sample1), cond: out.slice(sample1) } : { cond: out };
  };

  const generator = new TorchGenerator(req.seed);
  const hooks: SamplingHooks = {
    beforeStep: async (index, total, sigma) => {
      if (req.conditioningAt) conds = await req.conditioningAt(index, total);
      await req.hooks?.beforeStep?.(index, total, sigma);
    },
    onStep: req.hooks?.onStep,
  };
  return sample({
    sampler: req.sampler,
    scheduler: req.scheduler,
    steps: req.steps,
    denoise: req.denoise,
    startStep: req.startStep,
    endStep: req.endStep,
    returnWithLeftoverNoise: req.returnWithLeftoverNoise,
    addNoise: req.addNoise,
    latent: latent.data,
    noise: prepareNoise(req.seed, shape, latent.batchIndex),
    shape,
    modelSampling,
    denoiser: cfgDenoiser(guided, modelSampling, req.cfg),
    // Ancestral and SDE samplers draw from a generator seeded like ComfyUI's default noise sampler.
    noiseSource: (s) => generator.randn(s),
    hooks,
  });
}
