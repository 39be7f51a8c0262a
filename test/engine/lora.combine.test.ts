import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError, LoraBaseModelError } from '../../engine/errors.ts';
import { combineLoras, inspectLora, LoraSet } from '../../engine/lora/index.ts';
import { truncatedSvd } from '../../engine/lora/svd.ts';
import { openCheckpoint } from '../../engine/models/checkpoint.ts';
import { readWeight } from '../../engine/models/weights.ts';
import { f32Entry, SafetensorsFile, writeSafetensors } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const lyco = sharedFixture('lycoris-reference');
const sd1Path = sharedFixture('tiny-sd-reference', 'tiny-sd1.safetensors');
const sdxlDir = sharedFixture('tiny-sdxl-full');
const dir = mkdtempSync(join(tmpdir(), 'lg-combine-'));
const quiet = { log: () => {} };

describe('truncated SVD', () => {
  it('is exact at full rank and optimal-looking below it', () => {
    const [rows, cols] = [20, 12];
    const a = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) + ((i * 7) % 5) / 10);
    const full = truncatedSvd(a, rows, cols, cols);
    const product = (u: Float32Array, d: Float32Array, r: number) =>
      Float32Array.from({ length: rows * cols }, (_, i) => {
        const [o, c] = [Math.floor(i / cols), i % cols];
        let s = 0;
        for (let k = 0; k < r; k++) s += u[o * r + k] * d[k * cols + c];
        return s;
      });
    const err = (b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
    expect(err(product(full.up, full.down, full.rank))).toBeLessThan(1e-4);
    const sigma = full.singularValues;
    for (let r = 1; r < cols; r++) expect(sigma[r - 1]).toBeGreaterThanOrEqual(sigma[r]);
    for (const r of [1, 3, 6]) {
      const t = truncatedSvd(a, rows, cols, r);
      const tail = Math.sqrt(sigma.slice(r).reduce((s, v) => s + v * v, 0));
      expect(err(product(t.up, t.down, r))).toBeLessThanOrEqual(tail * 1.001 + 1e-5);
    }
  });
});

describe.skipIf(!lyco || !sd1Path)('combineLoras', () => {
  const sd1 = openCheckpoint(sd1Path!);
  afterAll(() => sd1.close());
  const lora = (name: string) => join(lyco!, name);

  /** Largest |Δcombined − Δinputs| over all weights the inputs change, relative to the largest change. */
  function compare(inputs: string[], combined: string): { err: number; names: number } {
    const want = LoraSet.open(sd1, inputs, quiet);
    const got = LoraSet.open(sd1, [combined], quiet);
    let err = 0;
    let scale = 0;
    for (const name of want.names()) {
      const base = readWeight(sd1.weight(name));
      const a = want.mergedWeight(name, base);
      const b = got.names().includes(name) ? got.mergedWeight(name, base) : base;
      for (let i = 0; i < a.length; i++) {
        err = Math.max(err, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(a[i] - base[i]));
      }
    }
    return { err: err / scale, names: want.names().length };
  }

  it('writes the exact weighted sum by concatenating ranks (no checkpoint needed)', () => {
    const specs = [`${lora('lora.safetensors')}:0.7`, `${lora('locon_tucker.safetensors')}:-0.5:te=1`, `${lora('lora_peft.safetensors')}:1.2`];
    const out = join(dir, 'exact.safetensors');
    const result = combineLoras(specs, { exact: true }, out, quiet);
    expect(result).toMatchObject({ approximated: 0, baseModel: 'sd1', maxRank: 12 });
    expect(compare(specs, out).err).toBeLessThan(1e-6);
    const file = SafetensorsFile.open(out);
    // the same module under two naming styles (kohya and PEFT) lands on one kohya key
    expect(file.info('lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight').shape).toEqual([32, 12, 1, 1]);
    expect(file.info('lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight').shape).toEqual([4, 32, 3, 3]);
    expect(file.readFloat32('lora_unet_down_blocks_0_attentions_0_proj_in.alpha')[0]).toBe(12);
    expect(file.metadata).toMatchObject({
      ss_network_module: 'networks.lora',
      ss_network_dim: '12',
      ss_base_model_version: 'sd_v1',
      'modelspec.architecture': 'stable-diffusion-v1/lora',
      'modelspec.title': 'exact.safetensors',
    });
    expect(JSON.parse(file.metadata.ss_network_args)).toEqual({ conv_dim: '4', conv_alpha: '4' });
    expect(file.metadata['modelspec.merged_from']).toContain('locon_tucker.safetensors:-0.5:te=1');
    file.close();
    expect(inspectLora(out).triggerWords.words).toEqual(['loratrigger', 'locon_tuckertrigger']);
  });

  it('matches the block-strength fixture after combining (blocks by name, standard layout)', () => {
    const out = join(dir, 'blocks.safetensors');
    combineLoras([`${lora('locon.safetensors')}:0.6:in=0:mid=1:out=0.5`], { exact: true }, out, quiet);
    const set = LoraSet.open(sd1, [out], quiet);
    const fixture = SafetensorsFile.open(lora('expect.blocks.safetensors'));
    for (const key of fixture.keys()) {
      const name = key.replace('model.diffusion_model.', 'unet.').replace('cond_stage_model.transformer.', 'te.');
      const base = readWeight(sd1.weight(name));
      const got = set.names().includes(name) ? set.mergedWeight(name, base) : base;
      const want = fixture.readFloat32(key);
      const scale = Math.max(...want.map(Math.abs));
      expect(Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale, key).toBeLessThan(1e-5);
    }
    fixture.close();
  });

  it('uses the checkpoint for names and for weight-dependent families', () => {
    const out = join(dir, 'with-ckpt.safetensors');
    const specs = [`${lora('lora.safetensors')}:0.5`, `${lora('lora_ldm_names.safetensors')}:0.5`];
    combineLoras(specs, { exact: true }, out, { ...quiet, checkpoint: sd1Path! });
    expect(compare(specs, out).err).toBeLessThan(1e-6);
    const keys = SafetensorsFile.open(out).keys();
    expect(keys).toContain('lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight');
    expect(keys.some((k) => k.includes('input_blocks'))).toBe(false);
    expect(() => combineLoras([lora('dora.safetensors')], { rank: 4 }, join(dir, 'x.safetensors'), quiet)).toThrow(/DoRA \(LoRA\), whose change depends on the base model's weights; pass the checkpoint/);
    const errors = [1, 32].map((rank) => {
      const path = join(dir, `dora-${rank}.safetensors`);
      const r = combineLoras([`${lora('dora.safetensors')}:1`], { rank }, path, { ...quiet, checkpoint: sd1Path! });
      expect(r.approximated).toBeGreaterThan(0);
      return compare([lora('dora.safetensors')], path).err;
    });
    expect(errors[0]).toBeGreaterThan(1e-2);
    expect(errors[1]).toBeLessThan(1e-5);
  });

  it('approximates other families to rank R with an error that shrinks with R', () => {
    const specs = [`${lora('loha_tucker.safetensors')}:0.8`];
    expect(() => combineLoras([...specs, lora('lokr.safetensors')], { exact: true }, join(dir, 'no.safetensors'), quiet)).toThrow(InvalidInputError);
    expect(() => combineLoras(specs, { exact: true }, join(dir, 'no.safetensors'), quiet)).toThrow(/not low-rank .*give a rank/);
    const errors = [1, 4, 32].map((rank) => {
      const path = join(dir, `r${rank}.safetensors`);
      const result = combineLoras(specs, { rank }, path, quiet);
      expect(result.maxRank).toBeLessThanOrEqual(rank);
      return compare(specs, path).err;
    });
    for (let i = 1; i < errors.length; i++) expect(errors[i]).toBeLessThan(errors[i - 1]);
    expect(errors[0]).toBeGreaterThan(1e-2);
    expect(errors[2]).toBeLessThan(1e-5);
  });

  it('refuses to mix base models and a bad rank', () => {
    expect(() => combineLoras([lora('lora.safetensors'), join(sdxlDir!, 'sdxl_lora.safetensors')], { exact: true }, join(dir, 'mix.safetensors'), quiet)).toThrow(LoraBaseModelError);
    expect(() => combineLoras([lora('lora.safetensors')], { rank: 0 }, join(dir, 'r0.safetensors'), quiet)).toThrow(/whole number ≥ 1/);
  });

  it('writes files whose header length starts with byte 0x80 (not a pickle)', () => {
    // Pad the metadata until the 8-byte little-endian header length begins with 0x80, as a pickle does.
    for (let pad = 0; pad < 64; pad++) {
      const path = join(dir, 'pad.safetensors');
      writeSafetensors(path, [f32Entry('lora_unet_conv_in.diff', [1], Float32Array.of(1))], { note: 'x'.repeat(pad * 8) });
      const file = SafetensorsFile.open(path);
      if (file.dataStart - 8 === 0x80 || (file.dataStart - 8) % 256 === 0x80) {
        expect(file.keys()).toEqual(['lora_unet_conv_in.diff']);
        file.close();
        return;
      }
      file.close();
    }
    throw new Error('no padding gave a 0x80 header length');
  });
});
