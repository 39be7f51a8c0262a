import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileFormatError, ModelLayoutError, NotFoundError } from '../../engine/errors.ts';
import { openCheckpoint } from '../../engine/models/checkpoint.ts';
import { detectCheckpoint } from '../../engine/models/detect.ts';
import { planSd1Tensors, SD15_SPEC, writeRandomSd1Checkpoint } from '../../engine/models/generate.ts';
import { chooseProvider, parseProvider } from '../../engine/runtime/provider.ts';
import { f32Entry, writeSafetensors } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'lg-ckpt-'));

/** Canonical shape map of the real SD1.5 layout (without writing its 2 GB of weights). */
function sd15Shapes(): Map<string, number[]> {
  const canonical = (name: string) =>
    name.replace(/^model\.diffusion_model\./, 'unet.').replace(/^first_stage_model\./, 'vae.').replace(/^cond_stage_model\.transformer\./, 'te.');
  return new Map(planSd1Tensors(SD15_SPEC).map((t) => [canonical(t.name), [...t.shape]]));
}

describe('checkpoint detection', () => {
  it('infers SD1.5 from shapes: widths, depths, heads, context, VAE and CLIP-L', () => {
    const c = detectCheckpoint(sd15Shapes());
    expect(c.family).toBe('sd1');
    expect(c.unet).toMatchObject({ modelChannels: 320, channelMult: [1, 2, 4, 4], numResBlocks: 2, transformerDepth: [1, 1, 1, 0], heads: [8, 8, 8, 8], contextDim: 768, linearProjection: false, admInChannels: 0 });
    expect(c.vae).toMatchObject({ baseChannels: 128, channelMult: [1, 2, 4, 4], numResBlocks: 2, latentChannels: 4, scalingFactor: 0.18215 });
    expect(c.clip).toEqual([{ vocabSize: 49408, width: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 77, activation: 'quick_gelu', projectionDim: 0 }]);
  });

  it('tells SD2 by its linear projections and 64-wide heads', () => {
    const shapes = sd15Shapes();
    for (const [k, v] of shapes) {
      if (/proj_(in|out)\.weight$/.test(k)) shapes.set(k, v.slice(0, 2));
      if (/attn2\.to_[kv]\.weight$/.test(k)) shapes.set(k, [v[0], 1024]);
    }
    const c = detectCheckpoint(shapes);
    expect(c.family).toBe('sd2');
    expect(c.unet).toMatchObject({ linearProjection: true, contextDim: 1024, heads: [5, 10, 20, 20] });
  });

  const sdxl = sharedFixture('tiny-sdxl-full', 'tiny-sdxl.safetensors');
  it.skipIf(!sdxl)('reads a complete SDXL single file: two encoders, pooled projection, added conditioning', () => {
    const ckpt = openCheckpoint(sdxl!);
    expect(ckpt.config.family).toBe('sdxl');
    expect(ckpt.config.unet).toMatchObject({ admInChannels: 80, timeIdCount: 6, timeIdDim: 8, linearProjection: true, transformerDepth: [0, 1, 2], transformerDepthMiddle: 2 });
    expect(ckpt.config.clip.map((c) => [c.activation, c.projectionDim])).toEqual([['quick_gelu', 0], ['gelu', 32]]);
    // OpenCLIP's fused in_proj appears as three row slices.
    const q = ckpt.weight('te2.text_model.encoder.layers.0.self_attn.q_proj.weight');
    const k = ckpt.weight('te2.text_model.encoder.layers.0.self_attn.k_proj.weight');
    expect(q.tensor).toBe(k.tensor);
    expect([q.rows, k.rows]).toEqual([{ start: 0, count: 32 }, { start: 32, count: 32 }]);
    ckpt.close();
  });

  it('takes the prediction type from metadata', () => {
    const path = join(dir, 'vpred.safetensors');
    writeRandomSd1Checkpoint(path, { ...SD15_SPEC, unet: { ...SD15_SPEC.unet, modelChannels: 32, channelMult: [1, 1, 1, 1], contextDim: 32 }, vae: { baseChannels: 32, channelMult: [1, 1], numResBlocks: 1, latentChannels: 4 }, clip: { width: 32, layers: 1, intermediate: 64, vocabSize: 600, positions: 77 } }, { seed: 1, metadata: { 'modelspec.prediction_type': 'v' } });
    const ckpt = openCheckpoint(path);
    expect(ckpt.config.prediction).toBe('v');
    ckpt.close();
  });

  it('refuses pickles, missing files and unknown layouts with typed errors', () => {
    const ckpt = join(dir, 'model.ckpt');
    writeFileSync(ckpt, Buffer.from([0x80, 2, 0x7d]));
    expect(() => openCheckpoint(ckpt)).toThrow(FileFormatError);
    expect(() => openCheckpoint(ckpt)).toThrow(/pickle.*arbitrary code|run arbitrary code|can run/);
    expect(() => openCheckpoint(join(dir, 'nope.safetensors'))).toThrow(NotFoundError);
    const other = join(dir, 'other.safetensors');
    writeSafetensors(other, [f32Entry('encoder.layer.0.weight', [2], new Float32Array(2)), f32Entry('lm_head.weight', [2], new Float32Array(2))]);
    expect(() => openCheckpoint(other)).toThrow(ModelLayoutError);
    expect(() => openCheckpoint(other)).toThrow(/lm_head\.weight/);
  });
});

describe('execution providers', () => {
  it('falls back to the CPU with the reason when a GPU provider cannot start', async () => {
    for (const requested of ['webgpu', 'cuda'] as const) {
      const choice = await chooseProvider(requested);
      if (choice.provider === requested) continue; // a machine with that GPU
      expect(choice.provider).toBe('cpu');
      expect(choice.fallbackReason).toMatch(new RegExp(`^${requested} is not available .*Using the CPU\\.$`));
    }
    expect((await chooseProvider('cpu')).provider).toBe('cpu');
    expect(() => parseProvider('tpu')).toThrow(/unknown execution provider "tpu"; choose one of cpu, webgpu, cuda/);
  });
});
