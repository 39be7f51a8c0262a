/**
 * The denoising UNet graph (LDM/SGM UNetModel semantics, identical to diffusers' UNet2DConditionModel):
 * SD1 (conv proj_in/out), SD2 (linear projections) and SDXL (plus pooled-text / size conditioning).
 *
 * Inputs:  sample [batch, in, h, w], timestep [batch] (float, may be fractional), encoder_hidden_states
 *          [batch, tokens, context]; SDXL also text_embeds [batch, pooled] and time_ids [batch, 6].
 * Output:  out [batch, out, h, w] — the model's raw prediction (noise for eps models, v for v models).
 */
import { Graph, ops, type Dim, type Value } from '../onnx/index.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { UNetConfig } from './config.ts';
import { ModelBuilder, type GraphPlan } from './layers.ts';

export const UNET_INPUTS = {
  sample: 'sample',
  timestep: 'timestep',
  context: 'encoder_hidden_states',
  textEmbeds: 'text_embeds',
  timeIds: 'time_ids',
} as const;

const RESNET_EPS = 1e-5;
const TRANSFORMER_NORM_EPS = 1e-6;

/** Sinusoidal embedding of a [batch] (or [n]) float vector: cos half then sin half (flip_sin_to_cos). */
export function timestepEmbedding(graph: Graph, t: Value, dim: number): Value {
  const half = dim / 2;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const args = ops.mul(ops.unsqueeze(t, [1]), graph.constant(freqs, [1, half]));
  return ops.concat([ops.cos(args), ops.sin(args)], 1);
}

interface UNetContext {
  readonly b: ModelBuilder;
  readonly config: UNetConfig;
  readonly emb: Value;
  readonly context: Value;
  /** The batch size at run time, [1] int64, for reshapes between token rows and [batch, tokens, width]. */
  readonly batch: Value;
}

/** Token rows [batch·n, width] → [batch, n, width]. */
function toBatched(ctx: UNetContext, rows: Value, width: number, tokens: Dim): Value {
  const shape = ops.concat([ctx.batch, ctx.b.graph.ints([-1, width])], 0);
  return ops.reshapeTo(rows, shape, [ctx.context.dim(0), tokens, width]);
}

function resBlock(ctx: UNetContext, x: Value, module: string): Value {
  const { b } = ctx;
  return b.graph.within(module, () => {
    let h = b.conv(ops.silu(b.groupNorm(x, `${module}.in_layers.0`, RESNET_EPS)), `${module}.in_layers.2`);
    const embOut = b.linear(ops.silu(ctx.emb), `${module}.emb_layers.1`);
    h = ops.add(h, ops.unsqueeze(embOut, [2, 3]));
    h = b.conv(ops.silu(b.groupNorm(h, `${module}.out_layers.0`, RESNET_EPS)), `${module}.out_layers.3`);
    const skip = b.has(`${module}.skip_connection.weight`) ? b.conv(x, `${module}.skip_connection`) : x;
    return ops.add(skip, h);
  });
}

function crossAttention(ctx: UNetContext, x: Value, context: Value | undefined, module: string, heads: number, tokens: Dim): Value {
  const { b } = ctx;
  const width = b.checkpoint.weight(`${module}.to_q.weight`).shape[0];
  const q = toBatched(ctx, b.linear(x, `${module}.to_q`), width, tokens);
  const src = context ?? x;
  const srcTokens = context ? ctx.context.dim(1) : tokens;
  const k = toBatched(ctx, b.linear(src, `${module}.to_k`), width, srcTokens);
  const v = toBatched(ctx, b.linear(src, `${module}.to_v`), width, srcTokens);
  return b.linear(ops.reshape(ops.attention(q, k, v, heads), [-1, width]), `${module}.to_out.0`);
}

function spatialTransformer(ctx: UNetContext, x: Value, module: string, heads: number, depth: number): Value {
  const { b, config } = ctx;
  return b.graph.within(module, () => {
    const channels = x.dim(1) as number;
    const h = b.groupNorm(x, `${module}.norm`, TRANSFORMER_NORM_EPS);
    // Tokens: [batch·h·w, channels]. With conv projections (SD1) project first, then flatten.
    const toTokens = (v: Value) => ops.reshape(ops.transpose(ops.reshape(v, [0, 0, -1]), [0, 2, 1]), [-1, channels]);
    let tokens = config.linearProjection ? b.linear(toTokens(h), `${module}.proj_in`) : toTokens(b.conv(h, `${module}.proj_in`));
    const hw = `tokens:${module}`;
    // Context rows [batch·n, context] computed once per transformer; the symbolic token count lets MHA reshape.
    const contextRows = ops.reshape(ctx.context, [-1, config.contextDim]);
    for (let i = 0; i < depth; i++) {
      const t = `${module}.transformer_blocks.${i}`;
      tokens = ops.add(tokens, crossAttention(ctx, b.layerNorm(tokens, `${t}.norm1`), undefined, `${t}.attn1`, heads, hw));
      tokens = ops.add(tokens, crossAttention(ctx, b.layerNorm(tokens, `${t}.norm2`), contextRows, `${t}.attn2`, heads, hw));
      const proj = b.linear(b.layerNorm(tokens, `${t}.norm3`), `${t}.ff.net.0.proj`);
      const inner = (proj.dim(1) as number) / 2;
      const [value, gate] = ops.split(proj, 1, [inner, inner]);
      tokens = ops.add(tokens, b.linear(ops.mul(value, ops.gelu(gate)), `${t}.ff.net.2`));
    }
    const fromTokens = (v: Value) => ops.reshapeTo(ops.transpose(toBatched(ctx, v, channels, hw), [0, 2, 1]), ops.shapeOf(x), x.shape);
    const out = config.linearProjection ? fromTokens(b.linear(tokens, `${module}.proj_out`)) : b.conv(fromTokens(tokens), `${module}.proj_out`);
    return ops.add(x, out);
  });
}

export function buildUNetGraph(checkpoint: Checkpoint, config: UNetConfig, plan?: GraphPlan): Graph {
  const graph = new Graph('unet');
  const b = new ModelBuilder(graph, checkpoint, plan);
  const P = 'unet';
  const sample = graph.input(UNET_INPUTS.sample, 'float32', ['batch', config.inChannels, 'height', 'width']);
  const timestep = graph.input(UNET_INPUTS.timestep, 'float32', ['batch']);
  const context = graph.input(UNET_INPUTS.context, 'float32', ['batch', 'context_tokens', config.contextDim]);

  let emb = b.linear(ops.silu(b.linear(timestepEmbedding(graph, timestep, config.modelChannels), `${P}.time_embed.0`)), `${P}.time_embed.2`);
  if (config.admInChannels > 0) {
    const pooledWidth = config.admInChannels - config.timeIdCount * config.timeIdDim;
    const textEmbeds = graph.input(UNET_INPUTS.textEmbeds, 'float32', ['batch', pooledWidth]);
    const timeIds = graph.input(UNET_INPUTS.timeIds, 'float32', ['batch', config.timeIdCount]);
    const idEmbeds = ops.reshape(timestepEmbedding(graph, ops.reshape(timeIds, [-1]), config.timeIdDim), [-1, config.timeIdCount * config.timeIdDim]);
    const y = ops.concat([textEmbeds, idEmbeds], 1);
    emb = ops.add(emb, b.linear(ops.silu(b.linear(y, `${P}.label_emb.0.0`)), `${P}.label_emb.0.2`));
  }
  const ctx: UNetContext = { b, config, emb, context, batch: ops.shapeOf(sample, 0, 1) };

  const R = config.numResBlocks;
  const levels = config.channelMult.length;
  let h = b.conv(sample, `${P}.input_blocks.0.0`);
  const skips: Value[] = [h];
  let index = 1;
  for (let level = 0; level < levels; level++) {
    for (let j = 0; j < R; j++, index++) {
      const block = `${P}.input_blocks.${index}`;
      h = resBlock(ctx, h, `${block}.0`);
      if (config.transformerDepth[level] > 0) h = spatialTransformer(ctx, h, `${block}.1`, config.heads[level], config.transformerDepth[level]);
      skips.push(h);
    }
    if (level < levels - 1) {
      h = b.conv(h, `${P}.input_blocks.${index}.0.op`, { stride: 2, pad: 1 });
      skips.push(h);
      index++;
    }
  }

  h = resBlock(ctx, h, `${P}.middle_block.0`);
  if (config.transformerDepthMiddle > 0) h = spatialTransformer(ctx, h, `${P}.middle_block.1`, config.headsMiddle, config.transformerDepthMiddle);
  h = resBlock(ctx, h, `${P}.middle_block.2`);

  index = 0;
  for (let level = levels - 1; level >= 0; level--) {
    for (let j = 0; j <= R; j++, index++) {
      const block = `${P}.output_blocks.${index}`;
      h = resBlock(ctx, ops.concat([h, skips.pop()!], 1), `${block}.0`);
      if (config.transformerDepth[level] > 0) h = spatialTransformer(ctx, h, `${block}.1`, config.heads[level], config.transformerDepth[level]);
      if (level > 0 && j === R) {
        const sub = config.transformerDepth[level] > 0 ? 2 : 1;
        // Upsample to the next skip's size, so latents whose sides are not multiples of 2^levels still work.
        h = b.conv(ops.upsampleNearestTo(h, skips[skips.length - 1]), `${block}.${sub}.conv`);
      }
    }
  }
  const out = b.conv(ops.silu(b.groupNorm(h, `${P}.out.0`, RESNET_EPS)), `${P}.out.2`);
  graph.output(out, 'out');
  return graph;
}
