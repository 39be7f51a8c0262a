/**
 * Conformance with the reference fixtures: every check of lycoris-reference/checks.json (on tiny-sd1) and
 * tiny-sdxl-full/checks.json, applied through bakeCheckpoint and read back from the baked file.
 * Metric per expected tensor: max|baked − expected| / max|expected| ≤ 1e-5.
 *
 * Two expected files contradict the fixtures' own README and lycoris_math.md (see DISPUTED): they are
 * compared after undoing the documented deviation, which is asserted to be exactly what they contain.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bakeCheckpoint } from '../../engine/lora/index.ts';
import { SafetensorsFile } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const lycoris = sharedFixture('lycoris-reference');
const sd1 = sharedFixture('tiny-sd-reference', 'tiny-sd1.safetensors');
const sdxlDir = sharedFixture('tiny-sdxl-full');
const out = mkdtempSync(join(tmpdir(), 'lg-lora-conf-'));
const quiet = { log: () => {} };

/**
 * expect.full: merged = W + s·(W + diff), i.e. the base weight counted into the "difference" (at strength 1 the
 * weight would double); LyCORIS stores diff = W_trained − W, and ComfyUI / A1111 / LyCORIS merge W + s·diff.
 * expect.lokr_both: ΔW = s·(alpha/r)²·(W1 ⊗ W2), LyCORIS's double-scale merge quirk, although the README
 * says alpha/rank is applied once for LoKr (and expect.loha applies it once). Both corrections turn the
 * fixture into the documented convention; a fixed fixture would fail here and the entry can go.
 */
const DISPUTED: Partial<Record<string, (expected: Float32Array, base: Float32Array, strength: number, dir: string) => Float32Array>> = {
  'expect.full.safetensors': (e, w, s) => e.map((v, i) => v - s * w[i]),
  'expect.lokr_both.safetensors': (e, w, _s, dir) => {
    const scale = uniformLokrScale(join(dir, 'lokr_both.safetensors'));
    return e.map((v, i) => w[i] + (v - w[i]) / scale);
  },
};

/** alpha/r of every module of a LoKr file, which must be one value. */
function uniformLokrScale(path: string): number {
  const file = SafetensorsFile.open(path);
  const scales = new Set(
    file.keys().filter((k) => k.endsWith('.alpha')).map((k) => file.readFloat32(k)[0] / file.info(k.replace(/alpha$/, 'lokr_w2_b')).shape[0]),
  );
  file.close();
  expect(scales.size).toBe(1);
  return [...scales][0];
}

interface Check {
  readonly expect: string;
  readonly loras: readonly string[];
  readonly checkpoint?: string;
}

/** Bakes, then returns for each expected tensor the relative error of the weight and of its change. */
function runCheck(dir: string, checkpoint: string, check: Check, n: number): { name: string; weight: number; delta: number }[] {
  const baked = join(out, `baked-${n}.safetensors`);
  bakeCheckpoint(checkpoint, check.loras.map((spec) => join(dir, spec)), baked, quiet);
  const expected = SafetensorsFile.open(join(dir, check.expect));
  const got = SafetensorsFile.open(baked);
  const base = SafetensorsFile.open(checkpoint);
  try {
    return expected.keys().map((name) => {
      const orig = base.readFloat32(name);
      const fix = DISPUTED[check.expect];
      if (fix && name === expected.keys()[0]) {
        console.warn(`[disputed fixture] ${check.expect} contradicts the fixtures' README (see DISPUTED): compared after undoing its deviation`);
      }
      const strength = Number(check.loras[0].split(':')[1]);
      const want = fix ? fix(expected.readFloat32(name), orig, strength, dir) : expected.readFloat32(name);
      const have = got.readFloat32(name);
      expect(have.length).toBe(want.length);
      let err = 0;
      let scale = 0;
      let change = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(have[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
        change = Math.max(change, Math.abs(want[i] - orig[i]));
      }
      // A weight the check leaves unchanged (strength 0 for its group) must come back bit for bit.
      if (change === 0) expect(err, name).toBe(0);
      return { name, weight: err / scale, delta: change > 0 ? err / change : 0 };
    });
  } finally {
    expected.close();
    got.close();
    base.close();
  }
}

function report(label: string, errors: { name: string; weight: number; delta: number }[]): void {
  const worst = errors.reduce((a, b) => (b.weight > a.weight ? b : a));
  const worstDelta = Math.max(...errors.map((e) => e.delta));
  console.log(`${label}: ${errors.length} tensors, max weight error ${worst.weight.toExponential(2)} (${worst.name}), max error / change ${worstDelta.toExponential(2)}`);
}

describe.skipIf(!lycoris || !sd1)('LoRA conformance: lycoris-reference on tiny-sd1 via bake', () => {
  const checks = lycoris ? (JSON.parse(readFileSync(join(lycoris, 'checks.json'), 'utf8')) as Check[]) : [];
  it.each(checks.map((c, i) => [`${c.loras.join(' + ')} → ${c.expect}`, c, i] as const))('%s', (label, check, i) => {
    const errors = runCheck(lycoris!, sd1!, check, i);
    report(label, errors);
    for (const e of errors) expect(e.weight, e.name).toBeLessThanOrEqual(1e-5);
  });
});

describe.skipIf(!sdxlDir)('LoRA conformance: tiny-sdxl-full via bake', () => {
  const checks = sdxlDir ? (JSON.parse(readFileSync(join(sdxlDir, 'checks.json'), 'utf8')) as Check[]) : [];
  it.each(checks.map((c, i) => [`${c.loras.join(' + ')} → ${c.expect}`, c, i] as const))('%s', (label, check, i) => {
    const errors = runCheck(sdxlDir!, join(sdxlDir!, check.checkpoint ?? 'tiny-sdxl.safetensors'), check, 100 + i);
    report(label, errors);
    for (const e of errors) expect(e.weight, e.name).toBeLessThanOrEqual(1e-5);
    // The fused in_proj of the second text encoder holds q, k and v: all three must have changed.
    expect(errors.some((e) => e.name.endsWith('attn.in_proj_weight'))).toBe(true);
  });
});
