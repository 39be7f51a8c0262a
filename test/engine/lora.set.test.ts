import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraBaseModelError, LoraMismatchError } from '../../engine/errors.ts';
import { LoraFileCache, LoraSet, loraDebugFromEnv } from '../../engine/lora/index.ts';
import { openCheckpoint, type Checkpoint } from '../../engine/models/checkpoint.ts';
import { readWeight } from '../../engine/models/weights.ts';
import { f32Entry, SafetensorsFile, writeSafetensors } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const lyco = sharedFixture('lycoris-reference');
const sd1Path = sharedFixture('tiny-sd-reference', 'tiny-sd1.safetensors');
const sdxlDir = sharedFixture('tiny-sdxl-full');
const dir = mkdtempSync(join(tmpdir(), 'lg-loraset-'));
const quiet = { log: () => {} };

/** Writes a LoRA built from another file's tensors, renamed and filtered by `rename` (undefined drops a key). */
function rewrite(from: string, to: string, rename: (key: string) => string | undefined, metadata?: Record<string, string>): string {
  const src = SafetensorsFile.open(from);
  const entries = src.keys().flatMap((k) => {
    const name = rename(k);
    return name ? [f32Entry(name, src.info(k).shape, src.readFloat32(k))] : [];
  });
  src.close();
  const path = join(dir, to);
  writeSafetensors(path, entries, metadata);
  return path;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(!lyco || !sd1Path || !sdxlDir)('LoraSet on the tiny checkpoints', () => {
  const sd1 = openCheckpoint(sd1Path!);
  const sdxl = openCheckpoint(join(sdxlDir!, 'tiny-sdxl.safetensors'));
  const lora = (name: string) => join(lyco!, name);
  const sdxlLora = join(sdxlDir!, 'sdxl_lora.safetensors');
  afterAll(() => {
    sd1.close();
    sdxl.close();
  });

  const mismatch = (ckpt: Checkpoint, spec: string): LoraBaseModelError => {
    try {
      LoraSet.open(ckpt, [spec], quiet);
    } catch (err) {
      return err as LoraBaseModelError;
    }
    throw new Error('no error');
  };

  it('refuses a LoRA of another base model, naming both families, from metadata', () => {
    const a = mismatch(sd1, sdxlLora);
    expect(a).toBeInstanceOf(LoraBaseModelError);
    expect(a.code).toBe('lora_base_mismatch');
    expect(a.message).toMatch(/is a SDXL LoRA \(metadata ss_base_model_version=sdxl_base_v1-0\) but the model is SD1\.x/);
    const b = mismatch(sdxl, lora('lora.safetensors'));
    expect(b.message).toMatch(/is a SD1\.x LoRA .* but the model is SDXL/);
  });

  it('refuses it from keys and shapes when there is no metadata', () => {
    const bare = rewrite(sdxlLora, 'sdxl-bare.safetensors', (k) => k);
    expect(mismatch(sd1, bare).message).toMatch(/SDXL LoRA \(key lora_te\d_.* one of two text encoders\) but the model is SD1\.x/);
    const bareSd1 = rewrite(lora('lora.safetensors'), 'sd1-bare.safetensors', (k) => k);
    expect(mismatch(sdxl, bareSd1).message).toMatch(/SD1\.x or SD2\.x LoRA \(key lora_te_.*only text encoder.*\) but the model is SDXL/);
    const unetOnly = rewrite(lora('lora.safetensors'), 'sd1-unet.safetensors', (k) => (k.startsWith('lora_unet_') ? k : undefined));
    const e = mismatch(sdxl, unetOnly);
    expect(e).toBeInstanceOf(LoraBaseModelError);
    expect(e.message).toMatch(/takes 32-wide text features, this model's cross-attention takes 64/);
  });

  it('refuses a LoRA that matches nothing, and one whose tensors do not fit', () => {
    const none = rewrite(lora('lora.safetensors'), 'none.safetensors', (k) => k.replace(/^lora_(unet|te)_/, 'lora_unet_nowhere_'), {});
    expect(() => LoraSet.open(sd1, [none], quiet)).toThrow(expect.objectContaining({ code: 'lora_no_match' }));
    expect(() => LoraSet.open(sd1, [none], quiet)).toThrow(/none\.safetensors: none of its 210 modules matches a weight of this SD1\.x model \(lora_unet_nowhere_.* ×9, .*and \d+ more kinds\)/);
    const src = SafetensorsFile.open(lora('lora.safetensors'));
    const bad = join(dir, 'bad-shape.safetensors');
    writeSafetensors(bad, [
      f32Entry('lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight', [4, 32], src.readFloat32('lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight')),
      f32Entry('lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight', [64, 4], new Float32Array(256)),
    ]);
    src.close();
    let error: unknown;
    try {
      LoraSet.open(sd1, [bad], quiet);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LoraMismatchError);
    expect((error as LoraMismatchError).code).toBe('lora_shape_mismatch');
    expect((error as Error).message).toMatch(/gives a \[64, 32\] change but the model weight is \[128, 32\] \(te\.text_model\.encoder\.layers\.0\.mlp\.fc1\.weight\)/);
  });

  it('reports unmatched modules once, summarised', () => {
    const partial = rewrite(lora('lora.safetensors'), 'partial.safetensors', (k) => (k.startsWith('lora_te_') ? k.replace('layers_', 'stages_') : k));
    const lines: string[] = [];
    const set = LoraSet.open(sd1, [partial], { log: (l) => lines.push(l), debug: false });
    expect(set.loras[0].unmatched).toHaveLength(18);
    expect(set.loras[0].matched).toHaveLength(192);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/18 of 210 modules match no weight of the model: lora_te_text_model_encoder_stages_N_mlp_fc1 ×3/);
  });

  it('gives the base back bit for bit at strength 0, however often applied and removed', () => {
    const set = LoraSet.open(sd1, [`${lora('locon.safetensors')}:0.8`, `${lora('dora.safetensors')}:0.5`, `${lora('oft.safetensors')}:1`], quiet);
    const off = set.withSpecs([`${lora('locon.safetensors')}:0`, `${lora('dora.safetensors')}:0`, `${lora('oft.safetensors')}:0`]);
    for (const name of set.names()) {
      const base = readWeight(sd1.weight(name));
      const copy = Float32Array.from(base);
      let w = base;
      for (let i = 0; i < 3; i++) {
        expect(maxAbs(set.mergedWeight(name, w), w)).toBeGreaterThan(0);
        w = off.mergedWeight(name, base);
      }
      expect(Buffer.from(w.buffer).equals(Buffer.from(copy.buffer))).toBe(true);
      expect(Buffer.from(base.buffer).equals(Buffer.from(copy.buffer))).toBe(true);
    }
  });

  it('reuses the parsed files when strengths change', () => {
    const cache = new LoraFileCache();
    const set = LoraSet.open(sd1, [`${lora('lora.safetensors')}:0.8`], { ...quiet, cache });
    const name = set.names()[0];
    set.mergedWeight(name, readWeight(sd1.weight(name)));
    const loaded = set.loras[0].file.loadedBytes;
    const again = set.withSpecs([`${lora('lora.safetensors')}:0.3:te=1`]);
    expect(again.loras[0].file).toBe(set.loras[0].file);
    again.mergedWeight(name, readWeight(sd1.weight(name)));
    expect(again.loras[0].file.loadedBytes).toBe(loaded);
    expect(LoraSet.open(sd1, [lora('lora.safetensors')], { ...quiet, cache }).loras[0].file).toBe(set.loras[0].file);
  });

  it('exposes linear terms that rebuild the merged weight', () => {
    const set = LoraSet.open(sd1, [`${lora('locon_tucker.safetensors')}:0.7`, `${lora('glora.safetensors')}`, `${lora('loha.safetensors')}:0.9`], quiet);
    let checked = 0;
    for (const name of set.names()) {
      const base = readWeight(sd1.weight(name));
      const terms = set.linearTerms(name, base);
      expect(terms !== undefined).toBe(set.target(name).linear);
      if (!terms) continue;
      const merged = set.mergedWeight(name, base);
      const rebuilt = Float32Array.from(base);
      for (const t of terms) for (let i = 0; i < rebuilt.length; i++) rebuilt[i] += set.strength(t.lora, name) * t.delta[i];
      expect(maxAbs(rebuilt, merged) / Math.max(...merged.map(Math.abs))).toBeLessThan(1e-6);
      checked++;
    }
    // GLoRA and LoHa share the attention weights: those are not linear; the convolutions (LoCon + LoHa) are.
    expect(set.target('unet.input_blocks.1.1.proj_in.weight').linear).toBe(false);
    expect(set.target('unet.input_blocks.1.0.in_layers.2.weight').terms.map((t) => t.family)).toEqual(['LoCon (Tucker)', 'LoHa']);
    expect(checked).toBeGreaterThan(50);
  });

  it('exposes low-rank factors that rebuild the merged weight', () => {
    const set = LoraSet.open(sd1, [`${lora('locon_tucker.safetensors')}:0.7`, `${lora('lora.safetensors')}:-0.4`], quiet);
    for (const name of set.names()) {
      const target = set.target(name);
      expect(target.lowRank).toBe(true);
      const base = readWeight(sd1.weight(name));
      const merged = set.mergedWeight(name, base);
      const fromFactors = Float32Array.from(base);
      const cols = base.length / target.shape[0];
      for (const f of set.lowRank(name)!) {
        expect(f.downShape).toEqual(target.shape.length === 4 ? [f.rank, ...target.shape.slice(1)] : [f.rank, cols]);
        const s = set.strength(f.lora, name) * f.scale;
        for (let o = 0; o < target.shape[0]; o++) {
          for (let c = 0; c < cols; c++) {
            let acc = 0;
            for (let k = 0; k < f.rank; k++) acc += f.up[o * f.rank + k] * f.down[k * cols + c];
            fromFactors[o * cols + c] += s * acc;
          }
        }
      }
      expect(maxAbs(fromFactors, merged) / Math.max(...merged.map(Math.abs))).toBeLessThan(1e-6);
    }
    // A Tucker LoCon is low-rank too: its core is folded into down.
    expect(set.lowRank('unet.input_blocks.1.0.in_layers.2.weight')![0].downShape).toEqual([4, 32, 3, 3]);
  });

  it('marks weights changed by a weight-dependent LoRA among others as non-linear', () => {
    const set = LoraSet.open(sd1, [lora('dora.safetensors'), lora('lora.safetensors')], quiet);
    const name = 'unet.input_blocks.1.1.proj_in.weight';
    expect(set.target(name)).toMatchObject({ linear: false, lowRank: false });
    expect(set.linearTerms(name, readWeight(sd1.weight(name)))).toBeUndefined();
    expect(LoraSet.open(sd1, [lora('dora.safetensors')], quiet).target(name)).toMatchObject({ linear: true, lowRank: false });
  });

  it('applies DoRA and OFT at other strengths as W + s·(F(W) − W)', () => {
    for (const [file, expect_] of [['dora.safetensors', 'expect.dora.safetensors'], ['oft.safetensors', 'expect.oft.safetensors']]) {
      const set = LoraSet.open(sd1, [`${lora(file)}:0.35`], quiet);
      const fixture = SafetensorsFile.open(lora(expect_));
      for (const key of fixture.keys().slice(0, 12)) {
        const name = key.replace('model.diffusion_model.', 'unet.').replace('cond_stage_model.transformer.', 'te.');
        const base = readWeight(sd1.weight(name));
        const full = fixture.readFloat32(key);
        const want = base.map((w, i) => w + 0.35 * (full[i] - w));
        expect(maxAbs(set.mergedWeight(name, base), want)).toBeLessThan(1e-6);
      }
      fixture.close();
    }
  });

  it('changes weights per step along a schedule', () => {
    const set = LoraSet.open(sd1, [`${lora('lora.safetensors')}:0@0,1@0.5`], quiet);
    const name = 'unet.middle_block.1.transformer_blocks.0.attn2.to_k.weight';
    const base = readWeight(sd1.weight(name));
    const full = LoraSet.open(sd1, [lora('lora.safetensors')], quiet).mergedWeight(name, base);
    const steps = [0, 1, 2, 3, 4].map((step) => set.mergedWeight(name, base, step, 5));
    expect(Buffer.from(steps[0].buffer).equals(Buffer.from(base.buffer))).toBe(true);
    const half = base.map((w, i) => w + 0.5 * (full[i] - w));
    expect(maxAbs(steps[1], half)).toBeLessThan(1e-6);
    expect(maxAbs(steps[2], full)).toBeLessThan(1e-6);
    expect(maxAbs(steps[4], full)).toBeLessThan(1e-6);
    expect(set.strength(0, name, 1, 5)).toBeCloseTo(0.5, 12);
  });

  it('reads PEFT alpha from lora_adapter_metadata', () => {
    const peft = rewrite(lora('lora_peft.safetensors'), 'peft-alpha.safetensors', (k) => k, {
      lora_adapter_metadata: JSON.stringify({ 'unet.lora_alpha': 2, 'unet.alpha_pattern': { 'attn2.to_k': 8 }, 'text_encoder.lora_alpha': 1 }),
    });
    const set = LoraSet.open(sd1, [`${peft}:0.8`], quiet);
    const noAlpha = LoraSet.open(sd1, [`${lora('lora_peft.safetensors')}:0.8`], quiet);
    for (const [name, scale] of [
      ['unet.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight', 0.5],
      ['unet.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight', 2],
      ['te.text_model.encoder.layers.0.mlp.fc1.weight', 0.25],
    ] as const) {
      const base = readWeight(sd1.weight(name));
      const one = noAlpha.mergedWeight(name, base);
      const want = base.map((w, i) => w + scale * (one[i] - w));
      expect(maxAbs(set.mergedWeight(name, base), want), name).toBeLessThan(1e-6);
    }
  });

  it('maps PEFT text_encoder / text_encoder_2 keys onto SDXL encoders, including the fused q/k/v', () => {
    const peft = rewrite(sdxlLora, 'sdxl-peft.safetensors', (k) => {
      const m = /^lora_te([12])_text_model_encoder_layers_(\d+)_(self_attn_(q|k|v|out)_proj|mlp_fc[12])\.(lora_down\.weight|lora_up\.weight|alpha)$/.exec(k);
      if (!m) return undefined;
      const module = m[3].replace('self_attn_', 'self_attn.').replace('mlp_', 'mlp.');
      const entry = { 'lora_down.weight': 'lora_A.weight', 'lora_up.weight': 'lora_B.weight', alpha: 'alpha' }[m[5]];
      return `${m[1] === '1' ? 'text_encoder' : 'text_encoder_2'}.text_model.encoder.layers.${m[2]}.${module}.${entry}`;
    });
    const set = LoraSet.open(sdxl, [`${peft}:0.9`], quiet);
    expect(set.loras[0].matched).toHaveLength(36);
    const want = SafetensorsFile.open(join(sdxlDir!, 'expect.sdxl_lora.safetensors'));
    const check = (name: string, key: string, rows?: [number, number]) => {
      const base = readWeight(sdxl.weight(name));
      let e = want.readFloat32(key);
      if (rows) e = e.slice(rows[0] * 32, rows[1] * 32);
      expect(maxAbs(set.mergedWeight(name, base), e), name).toBeLessThan(1e-6);
    };
    check('te1.text_model.encoder.layers.1.mlp.fc2.weight', 'conditioner.embedders.0.transformer.text_model.encoder.layers.1.mlp.fc2.weight');
    check('te2.text_model.encoder.layers.2.self_attn.k_proj.weight', 'conditioner.embedders.1.model.transformer.resblocks.2.attn.in_proj_weight', [32, 64]);
    check('te2.text_model.encoder.layers.2.self_attn.v_proj.weight', 'conditioner.embedders.1.model.transformer.resblocks.2.attn.in_proj_weight', [64, 96]);
    want.close();
  });

  it('logs families, matches, groups, strengths and timings in debug mode', () => {
    const lines: string[] = [];
    const set = LoraSet.open(sd1, [`${lora('locon.safetensors')}:0.5:out=0@0,1@1`], { log: (l) => lines.push(l), debug: true });
    const text = lines.join('\n');
    expect(text).toMatch(/\[lora debug\] .*locon\.safetensors:0\.5:out=0@0,1@1 → /);
    expect(text).toMatch(/families: LoRA \d+, LoCon \d+/);
    expect(text).toMatch(/matched 294, unmatched 0/);
    expect(text).toMatch(/groups: te 18, in 99, mid 18, out 159/);
    expect(text).toMatch(/strengths: te=0\.5 .*out=0@0,1@1/);
    expect(text).toMatch(/timings: load [\d.]+ ms, match [\d.]+ ms/);
    lines.length = 0;
    set.logStep(4, 9);
    expect(lines.join('\n')).toMatch(/locon\.safetensors step 5\/9: te 0\.5, in 0\.5, mid 0\.5, out 0\.5/);
  });

  it('classifies targets by component, group and block', () => {
    const set = LoraSet.open(sd1, [lora('locon.safetensors')], quiet);
    expect(set.target('unet.input_blocks.3.0.op.weight').place).toMatchObject({ component: 'unet', group: 'in', block: 3, blockCount: 25 });
    expect(set.target('unet.middle_block.1.proj_in.weight').place).toMatchObject({ group: 'mid', block: 12 });
    expect(set.target('unet.output_blocks.5.2.conv.weight').place).toMatchObject({ group: 'out', block: 18 });
    expect(set.target('te.text_model.encoder.layers.0.mlp.fc1.weight').place).toMatchObject({ component: 'te' });
    expect(() => LoraSet.open(sd1, [`${lora('locon.safetensors')}:blocks=1,0`], quiet)).toThrow(/has 2 values; this SD1.x UNet has 25 blocks/);
  });
});

// Needs no fixture, so it runs in every clone.
describe('LoRA debug logging switch', () => {
  it('is on for LORAGRAPH_LORA_DEBUG=1 and for any SD_LORA_DEBUG (as SD.Next), off otherwise', () => {
    expect(loraDebugFromEnv({ LORAGRAPH_LORA_DEBUG: '1' })).toBe(true);
    expect(loraDebugFromEnv({ LORAGRAPH_LORA_DEBUG: '0' })).toBe(false);
    expect(loraDebugFromEnv({ SD_LORA_DEBUG: '0' })).toBe(true);
    expect(loraDebugFromEnv({})).toBe(false);
  });
});
