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
import type { LoraApplyMethod } from '../engine/runtime/lora-runtime.ts';
import { ort } from '../engine/runtime/session.ts';
import { median } from './stats.ts';

const [method, checkpointPath, size, steps, ...loras] = process.argv.slice(2) as [LoraApplyMethod, string, string, string, ...string[]];
const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const seconds = (start: number) => (performance.now() - start) / 1000;

const model = new LoadedModel(openCheckpoint(checkpointPath), { scratchDir: `${dirname(checkpointPath)}/.scratch` }, '');
const h = Number(size) / 8;
const feeds = {
  sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 4 * h * h }, (_, i) => Math.sin(i)), [2, 4, h, h]),
  timestep: new ort.Tensor('float32', new Float32Array([999, 999]), [2]),
  encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 77 * 768 }, (_, i) => Math.cos(i) * 0.5), [2, 77, 768]),
};
const unet = model.unet();
const unetLoras = model.loras('unet');
const teLoras = model.loras('te');

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
let restored = true;
for (const [name, value] of [...unetLoras.fedWeights(), ...teLoras.fedWeights()]) {
  const base = readWeight(model.checkpoint.weight(name));
  const x = new Uint32Array(value.buffer, value.byteOffset, value.length);
  const y = new Uint32Array(base.buffer);
  if (!x.every((v, i) => v === y[i])) restored = false;
}
const reapplySeconds = await applyBoth(one);
await applyBoth(scheduledOne);
const oneScheduledStep = await timeSteps((step) => unetLoras.applySet(scheduledOne, method, step, total));
await applyBoth(three);
const threeStep = await timeSteps();
const rssThree = status('VmRSS');
await applyBoth(scheduled);
const scheduleStep = await timeSteps((step) => unetLoras.applySet(scheduled, method, step, total));
const rssScheduled = status('VmRSS');

console.log(
  JSON.stringify({
    method,
    loadSeconds,
    firstApplySeconds: firstApply,
    switchSeconds,
    removeSeconds,
    reapplySeconds,
    restoredBitForBit: restored,
    stepSeconds: { base: baseStep, oneLora: oneStep, oneScheduled: oneScheduledStep, threeLoras: threeStep, threeScheduled: scheduleStep },
    rss: { base: rssBase, applied: rssApplied, threeApplied: rssThree, threeScheduled: rssScheduled, peak: status('VmHWM') },
  }),
);
