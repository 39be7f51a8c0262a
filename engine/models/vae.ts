/**
 * The KL autoencoder's decoder and encoder graphs (LDM AutoencoderKL semantics = diffusers').
 * Decoder: latent [batch, latent, h, w] (already divided by the scaling factor) → decoded [batch, 3, 8h, 8w] in −1..1.
 * Encoder: image [batch, 3, H, W] in −1..1 → mean and logvar [batch, latent, H/8, W/8] (before scaling).
 */
import { Graph, ops, type Value } from '../onnx/index.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { VaeConfig } from './config.ts';
import { ModelBuilder, type GraphPlan } from './layers.ts';

const EPS = 1e-6;

function resBlock(b: ModelBuilder, x: Value, module: string): Value {
  return b.graph.within(module, () => {
    let h = b.conv(ops.silu(b.groupNorm(x, `${module}.norm1`, EPS)), `${module}.conv1`);
    h = b.conv(ops.silu(b.groupNorm(h, `${module}.norm2`, EPS)), `${module}.conv2`);
    const skip = b.has(`${module}.nin_shortcut.weight`) ? b.conv(x, `${module}.nin_shortcut`) : x;
    return ops.add(skip, h);
  });
}

/** Single-head self-attention over all pixels, q/k/v/proj_out stored as 1x1 convs or as linears. */
function attnBlock(b: ModelBuilder, x: Value, module: string): Value {
  return b.graph.within(module, () => {
    const channels = x.dim(1) as number;
    const h = b.groupNorm(x, `${module}.norm`, EPS);
    const rows = ops.reshape(ops.transpose(ops.reshape(h, [0, 0, -1]), [0, 2, 1]), [-1, channels]);
    const shape3d = ops.concat([ops.shapeOf(x, 0, 1), b.graph.ints([-1, channels])], 0);
    const as3d = (v: Value) => ops.reshapeTo(v, shape3d, [x.dim(0), 'pixels', channels]);
    const q = as3d(b.linearFromConv(rows, `${module}.q`));
    const k = as3d(b.linearFromConv(rows, `${module}.k`));
    const v = as3d(b.linearFromConv(rows, `${module}.v`));
    const attended = ops.reshape(ops.attention(q, k, v, 1), [-1, channels]);
    const out = b.linearFromConv(attended, `${module}.proj_out`);
    const back = ops.reshapeTo(ops.transpose(as3d(out), [0, 2, 1]), ops.shapeOf(x), x.shape);
    return ops.add(x, back);
  });
}

function midBlock(b: ModelBuilder, x: Value, side: string): Value {
  x = resBlock(b, x, `${side}.mid.block_1`);
  x = attnBlock(b, x, `${side}.mid.attn_1`);
  return resBlock(b, x, `${side}.mid.block_2`);
}

export function buildVaeDecoderGraph(checkpoint: Checkpoint, config: VaeConfig, plan?: GraphPlan): Graph {
  const graph = new Graph('vae-decoder');
  const b = new ModelBuilder(graph, checkpoint, plan);
  const latent = graph.input('latent', 'float32', ['batch', config.latentChannels, 'height', 'width']);
  let h = b.conv(latent, 'vae.post_quant_conv');
  h = b.conv(h, 'vae.decoder.conv_in');
  h = midBlock(b, h, 'vae.decoder');
  for (let level = config.channelMult.length - 1; level >= 0; level--) {
    for (let j = 0; j <= config.numResBlocks; j++) h = resBlock(b, h, `vae.decoder.up.${level}.block.${j}`);
    if (level > 0) h = b.conv(ops.upsampleNearest(h, 2), `vae.decoder.up.${level}.upsample.conv`);
  }
  h = b.conv(ops.silu(b.groupNorm(h, 'vae.decoder.norm_out', EPS)), 'vae.decoder.conv_out');
  graph.output(h, 'decoded');
  return graph;
}

export function buildVaeEncoderGraph(checkpoint: Checkpoint, config: VaeConfig, plan?: GraphPlan): Graph {
  const graph = new Graph('vae-encoder');
  const b = new ModelBuilder(graph, checkpoint, plan);
  const image = graph.input('image', 'float32', ['batch', config.inChannels, 'height', 'width']);
  let h = b.conv(image, 'vae.encoder.conv_in');
  const levels = config.channelMult.length;
  for (let level = 0; level < levels; level++) {
    for (let j = 0; j < config.numResBlocks; j++) h = resBlock(b, h, `vae.encoder.down.${level}.block.${j}`);
    if (level < levels - 1) {
      // LDM pads right/bottom by one, then convolves with stride 2 and no padding.
      const padded = graph.node('Pad', [h, graph.ints([0, 0, 0, 0, 0, 0, 1, 1])], [{ type: 'float32', shape: [h.dim(0), h.dim(1), `pad(${h.dim(2)})`, `pad(${h.dim(3)})`] }])[0];
      h = b.conv(padded, `vae.encoder.down.${level}.downsample.conv`, { stride: 2, pad: 0 });
    }
  }
  h = midBlock(b, h, 'vae.encoder');
  h = b.conv(ops.silu(b.groupNorm(h, 'vae.encoder.norm_out', EPS)), 'vae.encoder.conv_out');
  const moments = b.conv(h, 'vae.quant_conv');
  const [mean, logvar] = ops.split(moments, 1, [config.latentChannels, config.latentChannels]);
  graph.output(mean, 'mean');
  // diffusers' DiagonalGaussianDistribution clamps the log-variance to [-30, 20].
  graph.output(graph.node('Clip', [logvar, graph.scalar(-30), graph.scalar(20)], [{ type: 'float32', shape: logvar.shape }])[0], 'logvar');
  return graph;
}
