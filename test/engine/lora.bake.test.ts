import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../engine/errors.ts';
import { bakeCheckpoint } from '../../engine/lora/index.ts';
import { f32Entry, SafetensorsFile, writeSafetensors } from '../../engine/safetensors/index.ts';
import { fromFloat32, toFloat32 } from '../../engine/tensor/dtype.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const sdxlDir = sharedFixture('tiny-sdxl-full');
const lyco = sharedFixture('lycoris-reference');
const sd1Dir = sharedFixture('tiny-sd-reference');
const dir = mkdtempSync(join(tmpdir(), 'lg-bake-'));
const quiet = { log: () => {} };

function tensors(path: string): { file: SafetensorsFile; names: string[] } {
  const file = SafetensorsFile.open(path);
  return { file, names: file.infos().sort((a, b) => a.offset - b.offset).map((i) => i.name) };
}

describe.skipIf(!sdxlDir || !lyco || !sd1Dir)('bakeCheckpoint', () => {
  it('keeps layout, names, order, dtypes and metadata; copies untouched tensors byte for byte; writes transposed and fused tensors back', () => {
    const ckpt = join(sdxlDir!, 'tiny-sdxl.safetensors');
    // A LoRA on the second encoder's text_projection, which the file stores transposed (x @ P).
    const up = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const down = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i));
    const projection = join(dir, 'projection.safetensors');
    writeSafetensors(projection, [f32Entry('lora_te2_text_projection.lora_up.weight', [32, 2], up), f32Entry('lora_te2_text_projection.lora_down.weight', [2, 32], down)]);
    const out = join(dir, 'baked.safetensors');
    const result = bakeCheckpoint(ckpt, [`${join(sdxlDir!, 'sdxl_lora.safetensors')}:0.9`, `${projection}:0.5`], out, quiet);
    const a = tensors(ckpt);
    const b = tensors(out);
    expect(b.names).toEqual(a.names);
    expect(b.file.metadata).toEqual(a.file.metadata);
    let same = 0;
    for (const name of a.names) {
      expect(b.file.info(name).dtype).toBe(a.file.info(name).dtype);
      expect(b.file.info(name).shape).toEqual(a.file.info(name).shape);
      if (Buffer.from(a.file.readBytes(name)).equals(Buffer.from(b.file.readBytes(name)))) same++;
    }
    expect(same).toBe(a.names.length - result.changedTensors);
    expect(result.changedTensors).toBe(287 + 1);
    const key = 'conditioner.embedders.1.model.text_projection';
    const [p0, p1] = [a.file.readFloat32(key), b.file.readFloat32(key)];
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        // The Linear weight W = Pᵀ changes by 0.5·up·down, so P[r, c] changes by 0.5·(up·down)[c, r].
        const delta = 0.5 * (up[c * 2] * down[r] + up[c * 2 + 1] * down[32 + r]);
        expect(p1[r * 32 + c]).toBeCloseTo(p0[r * 32 + c] + delta, 5);
      }
    }
    a.file.close();
    b.file.close();
  });

  it('gives back the input tensors bit for bit at strength 0', () => {
    const ckpt = join(sd1Dir!, 'tiny-sd1.safetensors');
    const out = join(dir, 'zero.safetensors');
    bakeCheckpoint(ckpt, [`${join(lyco!, 'dora.safetensors')}:0`, `${join(lyco!, 'locon.safetensors')}:0`], out, quiet);
    const a = tensors(ckpt);
    const b = tensors(out);
    for (const name of a.names) expect(Buffer.from(b.file.readBytes(name)).equals(Buffer.from(a.file.readBytes(name))), name).toBe(true);
    a.file.close();
    b.file.close();
  });

  it('keeps half-precision checkpoints in half precision', () => {
    const src = SafetensorsFile.open(join(sd1Dir!, 'tiny-sd1.safetensors'));
    const half = join(dir, 'half.safetensors');
    writeSafetensors(half, src.keys().map((k) => ({ name: k, dtype: 'F16', shape: src.info(k).shape, data: fromFloat32(src.readFloat32(k), 'F16') })), { note: 'half' });
    src.close();
    const out = join(dir, 'half-baked.safetensors');
    bakeCheckpoint(half, [`${join(lyco!, 'lora.safetensors')}:1`], out, quiet);
    const a = SafetensorsFile.open(half);
    const b = SafetensorsFile.open(out);
    const key = 'model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight';
    expect(b.info(key).dtype).toBe('F16');
    const [w0, w1] = [toFloat32(a.readBytes(key), 'F16'), toFloat32(b.readBytes(key), 'F16')];
    expect(w0.some((v, i) => v !== w1[i])).toBe(true);
    expect(Buffer.from(b.readBytes('first_stage_model.decoder.conv_out.weight')).equals(Buffer.from(a.readBytes('first_stage_model.decoder.conv_out.weight')))).toBe(true);
    expect(b.metadata).toEqual({ note: 'half' });
    a.close();
    b.close();
  });

  it('refuses to overwrite its input and to bake a diffusers folder', () => {
    const ckpt = join(sd1Dir!, 'tiny-sd1.safetensors');
    expect(() => bakeCheckpoint(ckpt, [], ckpt, quiet)).toThrow(InvalidInputError);
    expect(() => bakeCheckpoint(join(sd1Dir!, 'tiny-sd1'), [join(lyco!, 'lora.safetensors')], join(dir, 'folder.safetensors'), quiet)).toThrow(/diffusers folder/);
  });
});
