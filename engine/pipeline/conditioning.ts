/**
 * Prompt → conditioning, as ComfyUI's CLIPTextEncode does it: tokenise into 77-token chunks with emphasis
 * weights, run the text encoder(s) on all chunks at once, apply the weights, join the chunks.
 * SD1 uses the chosen layer with the final LayerNorm; SD2 likewise from the penultimate layer by default;
 * SDXL joins CLIP-L's and OpenCLIP-G's penultimate layers (no final LayerNorm) and adds G's pooled projection.
 */
import { InvalidInputError } from '../errors.ts';
import type { ModelFamily } from '../models/config.ts';
import type { LoadedModel, TextEncoderInfo } from '../runtime/loaded-model.ts';
import { ort } from '../runtime/session.ts';
import { applyEmphasis, CHUNK_LENGTH, DEFAULT_EMPHASIS_MODE, padIdFor, tokenizePrompt, type Emphasis, type EmphasisMode } from '../tokenizer/index.ts';
import { applyTextEncoderLoras, type LoraContext } from './loras.ts';

export interface Conditioning {
  /** [1, tokens, width] */
  readonly context: Float32Array;
  readonly tokens: number;
  readonly width: number;
  /** SDXL's pooled text embedding [1, pooledWidth]. */
  readonly pooled?: Float32Array;
}

export interface TextEncodeOptions {
  /** CLIPSetLastLayer's value (−1 = last layer, −2 = penultimate …); undefined = the family's default. */
  readonly lastLayer?: number;
  /** How `(word:1.2)` weights act on the encoding (weighting.ts); default ComfyUI's. */
  readonly emphasis?: EmphasisMode;
  /** LoRAs on the text encoders, applied before encoding (at `step` of `totalSteps` for schedules). */
  readonly loras?: LoraContext;
  readonly step?: number;
  readonly totalSteps?: number;
}

/** ComfyUI's defaults: SD1 the last layer, SD2 and SDXL the penultimate. */
export function defaultLastLayer(family: ModelFamily): number {
  return family === 'sd1' ? -1 : -2;
}

interface Encoded {
  /** [chunks, 77, width] */
  readonly hidden: Float32Array;
  readonly chunks: number;
  readonly width: number;
  readonly pooled: Float32Array;
}

async function runEncoder(model: LoadedModel, info: TextEncoderInfo, ids: number[][], layer: number): Promise<Encoded> {
  const session = model.textEncoder(info.prefix);
  const flat = BigInt64Array.from(ids.flat(), (v) => BigInt(v));
  const result = await session.run({
    input_ids: new ort.Tensor('int64', flat, [ids.length, CHUNK_LENGTH]),
    layer: new ort.Tensor('int64', BigInt64Array.from([BigInt(layer)]), [1]),
  });
  // SDXL conditions on raw hidden states; SD1/SD2 on the LayerNorm-ed ones.
  const hidden = (model.family === 'sdxl' ? result.hidden : result.hidden_final_ln).data as Float32Array;
  return { hidden, chunks: ids.length, width: info.config.width, pooled: result.pooled.data as Float32Array };
}

async function encodeWith(model: LoadedModel, info: TextEncoderInfo, text: string, options: TextEncodeOptions): Promise<Encoded> {
  const lastLayer = options.lastLayer ?? defaultLastLayer(model.family);
  const layers = info.config.layers;
  if (!Number.isInteger(lastLayer) || lastLayer >= 0 || lastLayer < -layers) {
    throw new InvalidInputError(`clip layer ${lastLayer} is out of range: this text encoder has ${layers} layers, so use −1 … −${layers}`);
  }
  const tokenizer = model.tokenizer(info.tokenizerKind);
  const padId = padIdFor(info.tokenizerKind, tokenizer);
  const { chunks } = tokenizePrompt(tokenizer, text, { padId });
  const encoded = await runEncoder(model, info, chunks.map((c) => c.ids), layers + lastLayer);
  if (chunks.every((c) => c.weights.every((w) => w === 1))) return encoded;
  let emphasis: Emphasis = { mode: 'a1111' };
  if ((options.emphasis ?? DEFAULT_EMPHASIS_MODE) === 'comfy') {
    const empty = tokenizePrompt(tokenizer, '', { padId }).chunks[0];
    emphasis = { mode: 'comfy', emptyZ: (await runEncoder(model, info, [empty.ids], layers + lastLayer)).hidden };
  }
  const size = CHUNK_LENGTH * encoded.width;
  const hidden = new Float32Array(encoded.hidden.length);
  chunks.forEach((chunk, i) => hidden.set(applyEmphasis(encoded.hidden.subarray(i * size, (i + 1) * size), chunk.weights, emphasis), i * size));
  return { ...encoded, hidden };
}

/** Encodes a prompt with the model's text encoder(s), with the given LoRAs applied to them. */
export async function encodePrompt(model: LoadedModel, text: string, options: TextEncodeOptions = {}): Promise<Conditioning> {
  const encoders = model.textEncoders();
  if (encoders.length === 0) throw new InvalidInputError(`${model.checkpoint.path} has no text encoder, so it cannot encode prompts`);
  await applyTextEncoderLoras(model, options.loras, options.step ?? 0, options.totalSteps ?? 1);
  const outputs: Encoded[] = [];
  for (const info of encoders) outputs.push(await encodeWith(model, info, text, options));
  // SDXL's two tokenisations can differ in chunk count; like ComfyUI, keep the common part.
  const chunks = Math.min(...outputs.map((o) => o.chunks));
  const tokens = chunks * CHUNK_LENGTH;
  const width = outputs.reduce((w, o) => w + o.width, 0);
  const context = new Float32Array(tokens * width);
  let offset = 0;
  for (const o of outputs) {
    for (let t = 0; t < tokens; t++) context.set(o.hidden.subarray(t * o.width, (t + 1) * o.width), t * width + offset);
    offset += o.width;
  }
  const pooledSource = model.family === 'sdxl' ? outputs[outputs.length - 1] : undefined;
  const pooled = pooledSource ? pooledSource.pooled.slice(0, pooledSource.pooled.length / pooledSource.chunks) : undefined;
  return { context, tokens, width, pooled };
}
