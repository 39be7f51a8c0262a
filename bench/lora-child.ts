/**
 * One LoRA benchmark run in a fresh process, for one apply method: apply / switch / remove times (UNet and
 * text encoder), whether removal restores the base bit for bit, UNet step times with 0, 1 and 3 LoRAs and with
 * a schedule changing every step, and peak RSS. Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoraSet } from '../engine/lora/index.ts';
import { openCheckpoint } from '../engine/models/checkpoint.ts';
import { readWeight } from '../engine/models/weights.ts';
import { LoadedModel } from '../engine/runtime/loaded-model.ts';
import type { LoraApplyMethod, LoraRuntime } from '../engine/runtime/lora-runtime.ts';
import { ort } from '../engine/runtime/session.ts';
import { median } from './stats.ts';

const [method, checkpointPath, size, steps, ...loras] = process.argv.slice(2) as [LoraApplyMethod, string, string, string, ...string[]];
const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const seconds = (start: number) => (performance.now() - start) / 1000;

const model = new LoadedModel(openCheckpoint(checkpointPath), { scratchDir: `${dirname(checkpointPath)}/.scratch` }, '');
const h = Number(size) / 8;
const context = model.config.unet!.contextDim;
const feeds = {
  sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 4 * h * h }, (_, i) => Math.sin(i)), [2, 4, h, h]),
  timestep: new ort.Tensor('float32', new Float32Array([999, 999]), [2]),
  encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 77 * context }, (_, i) => Math.cos(i) * 0.5), [2, 77, context]),
};
const clip = model.config.clip[0];
const teFeeds = {
  input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: clip.maxPositions }, (_, i) => BigInt((i * 7919) % clip.vocabSize)), [1, clip.maxPositions]),
  layer: new ort.Tensor('int64', BigInt64Array.from([BigInt(clip.layers - 1)]), [1]),
};
const unet = model.unet();
const te = model.textEncoder('te');
const unetLoras = model.loras('unet');
const teLoras = model.loras('te');
const unetOutput = async () => (await unet.run(feeds)).out.data as Float32Array;
const teOutput = async () => (await te.run(teFeeds)).last_hidden_state.data as Float32Array;

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Whether a module is back to its base after every LoRA was removed: each fed weight holds the checkpoint's
 * bytes, and with none fed (dynamic: base constants plus idle branches) the output equals `base`'s. Outputs
 * with fed weights are not compared: those run through other kernels than pre-packed constants, which
 * changes the last bits (see test/engine/lora-runtime.test.ts).
 */
async function restored(runtime: LoraRuntime, output: () => Promise<Float32Array>, base: () => Promise<Float32Array>): Promise<boolean> {
  const fed = [...runtime.fedWeights()];
  if (fed.length > 0) return fed.every(([name, value]) => bitsEqual(value, readWeight(model.checkpoint.weight(name))));
  return bitsEqual(await output(), await base());
}

/** Median seconds per step (each step's LoRA update included), after a warm-up step. */
async function timeSteps(before?: (step: number) => Promise<void>): Promise<number> {
  const n = Number(steps);
  await unet.run(feeds); // warm-up (and plan change, if any)
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await before?.(i + 1);
    await unet.run(feeds);
    times.push(seconds(started));
  }
  return median(times);
}

async function applyBoth(set: LoraSet | undefined): Promise<number> {
  const started = performance.now();
  await unetLoras.applySet(set, method);
  await teLoras.applySet(set, method);
  await unet.ensure();
  return seconds(started);
}

const loadStart = performance.now();
await unet.ensure();
const loadSeconds = seconds(loadStart);
const rssBase = status('VmRSS');
const baseStep = await timeSteps();
const baseOutput = await unetOutput();

const [a, b, c] = loras;
const one = LoraSet.open(model.checkpoint, [`${a}:0.8`]);
const other = LoraSet.open(model.checkpoint, [`${b}:0.8`]);
const three = LoraSet.open(model.checkpoint, [`${a}:0.5`, `${b}:0.5`, `${c}:0.5`]);
const total = Number(steps) + 1;
const scheduledOne = LoraSet.open(model.checkpoint, [`${a}:0.2@0,1@1`]);
const scheduled = LoraSet.open(model.checkpoint, [`${a}:0.2@0,1@1`, `${b}:1@0,0.2@1`, `${c}:0.5@0,0@1`]);

const firstApply = await applyBoth(one); // includes building the LoRA graph once
const rssApplied = status('VmRSS');
const oneStep = await timeSteps();
const switchSeconds = await applyBoth(other);
const removeSeconds = await applyBoth(undefined);
const reapplySeconds = await applyBoth(one);
await applyBoth(scheduledOne);
const oneScheduledStep = await timeSteps((step) => unetLoras.applySet(scheduledOne, method, step, total));
await applyBoth(three);
const threeStep = await timeSteps();
const rssThree = status('VmRSS');
await applyBoth(scheduled);
const scheduleStep = await timeSteps((step) => unetLoras.applySet(scheduled, method, step, total));
const rssScheduled = status('VmRSS');
const rssPeak = status('VmHWM');

// Checked last, after the most involved state (three scheduled LoRAs), and after the memory figures: the text
// encoder's session exists only from here. Its base output comes from the all-constant graph (`reset`).
await applyBoth(undefined);
const unetRestored = await restored(unetLoras, unetOutput, async () => baseOutput);
const teRestored = await restored(teLoras, teOutput, async () => {
  await teLoras.reset();
  return teOutput();
});

console.log(
  JSON.stringify({
    method,
    loadSeconds,
    firstApplySeconds: firstApply,
    switchSeconds,
    removeSeconds,
    reapplySeconds,
    restoredBitForBit: unetRestored && teRestored,
    stepSeconds: { base: baseStep, oneLora: oneStep, oneScheduled: oneScheduledStep, threeLoras: threeStep, threeScheduled: scheduleStep },
    rss: { base: rssBase, applied: rssApplied, threeApplied: rssThree, threeScheduled: rssScheduled, peak: rssPeak },
  }),
);
