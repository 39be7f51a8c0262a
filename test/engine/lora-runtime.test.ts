import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraSet, writeKohyaLora } from '../../engine/lora/index.ts';
import { openCheckpoint } from '../../engine/models/checkpoint.ts';
import { ensureTinyRandomModel, modelFolders } from '../../engine/models/embedded.ts';
import { readWeight } from '../../engine/models/weights.ts';
import { prepareUnetLoras } from '../../engine/pipeline/loras.ts';
import { LoadedModel } from '../../engine/runtime/loaded-model.ts';
import type { LoraApplyMethod } from '../../engine/runtime/lora-runtime.ts';
import { ort } from '../../engine/runtime/session.ts';

const dir = mkdtempSync(join(tmpdir(), 'lg-lora-rt-'));
const folders = modelFolders(join(dir, 'models'));
let checkpointPath: string;
const loraA = join(dir, 'a.safetensors');
const loraB = join(dir, 'b.safetensors');

beforeAll(() => {
  checkpointPath = ensureTinyRandomModel(folders);
  const ckpt = openCheckpoint(checkpointPath);
  writeKohyaLora(ckpt, loraA, { rank: 4, seed: 1, scale: 0.2 });
  writeKohyaLora(ckpt, loraB, { rank: 8, seed: 2, locon: true, scale: 0.2 });
  ckpt.close();
});

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function unetOutput(model: LoadedModel): Promise<Float32Array> {
  const result = await model.unet().run({
    sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 4 * 64 }, (_, i) => Math.sin(i)), [2, 4, 8, 8]),
    timestep: new ort.Tensor('float32', new Float32Array([500, 20]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i)), [2, 77, 32]),
  });
  return result.out.data as Float32Array;
}

describe('LoRA runtime: apply methods on a real session', () => {
  for (const method of ['fuse', 'backup', 'dynamic'] as LoraApplyMethod[]) {
    it(`${method}: applying and removing LoRAs 100 times leaves the base weights bit-identical`, async () => {
      const model = new LoadedModel(openCheckpoint(checkpointPath), {}, folders.tokenizers);
      const runtime = model.loras('unet');
      const base = await unetOutput(model);
      const sets = [LoraSet.open(model.checkpoint, [`${loraA}:0.8`]), LoraSet.open(model.checkpoint, [`${loraA}:1:in=0.3`, `${loraB}:0.5`])];
      let withLora: Float32Array | undefined;
      for (let i = 0; i < 100; i++) {
        await runtime.applySet(sets[i % 2], method);
        if (i < 3) {
          const out = await unetOutput(model);
          expect(bitsEqual(out, base), `LoRA set ${i % 2} changes the output`).toBe(false);
          // Compared from the third application on, when the graph has taken its final form (fed weights run
          // through other kernels than pre-packed constants, which changes the last bits).
          if (i === 2) withLora = out;
        }
        await runtime.applySet(undefined, method);
      }
      // What the session is fed now is exactly the checkpoint's bytes …
      for (const [name, value] of runtime.fedWeights()) expect(bitsEqual(value, readWeight(model.checkpoint.weight(name))), name).toBe(true);
      // … and re-applying gives the same output as the first time (no drift).
      await runtime.applySet(sets[0], method);
      expect(bitsEqual(await unetOutput(model), withLora!)).toBe(true);
      await runtime.applySet(undefined, method);
      if (method === 'dynamic') expect(bitsEqual(await unetOutput(model), base)).toBe(true);
      // Back to the all-constant graph ("reload model"): the base output exactly.
      await runtime.reset();
      expect(bitsEqual(await unetOutput(model), base)).toBe(true);
      await model.release();
    });
  }

  it('fuse, backup and dynamic give the same LoRA output (to float rounding)', async () => {
    const outputs: Float32Array[] = [];
    for (const method of ['fuse', 'backup', 'dynamic'] as LoraApplyMethod[]) {
      const model = new LoadedModel(openCheckpoint(checkpointPath), {}, folders.tokenizers);
      await model.loras('unet').applySet(LoraSet.open(model.checkpoint, [`${loraA}:0.8`, `${loraB}:0.5:out=0`]), method);
      outputs.push(await unetOutput(model));
      await model.release();
    }
    for (const out of outputs.slice(1)) {
      const maxDiff = out.reduce((m, v, i) => Math.max(m, Math.abs(v - outputs[0][i])), 0);
      expect(maxDiff).toBeLessThan(1e-4);
    }
  });

  it('fuse holds no LoRA tensors once merged at constant strengths, reads them again for a change; branches keep them', async () => {
    const model = new LoadedModel(openCheckpoint(checkpointPath), {}, folders.tokenizers);
    const runtime = model.loras('unet');
    const loaded = (set: LoraSet) => set.loras.reduce((n, l) => n + l.file.loadedBytes, 0);
    const constant = LoraSet.open(model.checkpoint, [`${loraA}:0.8`]);
    await runtime.applySet(constant, 'fuse');
    expect(loaded(constant)).toBe(0);
    const stronger = LoraSet.open(model.checkpoint, [`${loraA}:1`]);
    await runtime.applySet(stronger, 'fuse');
    const name = stronger.names().find((n) => n.startsWith('unet.'))!;
    const expected = stronger.mergedWeight(name, readWeight(model.checkpoint.weight(name)));
    expect(Math.max(...runtime.fedWeights().get(name)!.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-5);
    const scheduled = LoraSet.open(model.checkpoint, [`${loraA}:0@0,1@1`]);
    await runtime.applySet(scheduled, 'fuse', 0, 4);
    expect(loaded(scheduled)).toBeGreaterThan(0);
    await runtime.reset();
    await runtime.applySet(constant, 'dynamic');
    expect(loaded(constant)).toBeGreaterThan(0);
    await model.release();
  });

  for (const method of ['fuse', 'backup', 'dynamic'] as LoraApplyMethod[]) {
    it(`${method}: a step schedule changes the applied weights at each step`, async () => {
      const model = new LoadedModel(openCheckpoint(checkpointPath), {}, folders.tokenizers);
      const specs = [{ text: 's', name: loraA, options: { unet: { schedule: [{ at: 0, weight: 0 }, { at: 1, weight: 1 }] } } }];
      const update = await prepareUnetLoras(model, { specs, lorasDir: dir, method }, 0, 5);
      const outputs: Float32Array[] = [];
      for (let step = 0; step < 5; step++) {
        await update(step, 5);
        outputs.push(await unetOutput(model));
      }
      // The base model in the same graph (fed weights or idle branches), for an exact comparison.
      await model.loras('unet').applySet(undefined, method);
      const base = await unetOutput(model);
      // Strength 0 at the first step: exactly the base model; then it moves further away step by step.
      expect(bitsEqual(outputs[0], base)).toBe(true);
      const distance = outputs.map((o) => Math.sqrt(o.reduce((s, v, i) => s + (v - base[i]) ** 2, 0)));
      for (let i = 1; i < 5; i++) expect(distance[i]).toBeGreaterThan(distance[i - 1]);
      // The last step runs at strength 1: the same as the LoRA applied at a constant strength of 1.
      await model.loras('unet').applySet(LoraSet.open(model.checkpoint, [`${loraA}:1`]), method);
      const constant = await unetOutput(model);
      expect(Math.max(...outputs[4].map((v, i) => Math.abs(v - constant[i])))).toBeLessThan(1e-4);
      if (method !== 'dynamic') {
        // The fed weight at the last step is base + 1·ΔW.
        const set = LoraSet.open(model.checkpoint, [`${loraA}:1`]);
        await model.loras('unet').applySet(set, method);
        const name = set.names().find((n) => n.startsWith('unet.'))!;
        const expected = set.mergedWeight(name, readWeight(model.checkpoint.weight(name)));
        const fed = model.loras('unet').fedWeights().get(name)!;
        expect(Math.max(...fed.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-5);
      }
      await model.release();
    });
  }
});
