/**
 * One benchmark measurement in a fresh process: load a UNet (through the engine from the checkpoint, or as a
 * bare onnxruntime session from an exported .onnx file), then time batch-2 steps. Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { openCheckpoint } from '../engine/models/checkpoint.ts';
import { buildUNetGraph } from '../engine/models/unet.ts';
import { createSession } from '../engine/runtime/session.ts';

const [mode, path, sizeText, stepsText] = process.argv.slice(2);
const size = Number(sizeText);
const steps = Number(stepsText);

const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
}

const started = performance.now();
let session: ort.InferenceSession;
if (mode === 'engine') {
  const ckpt = openCheckpoint(path);
  session = await createSession(buildUNetGraph(ckpt, ckpt.config.unet!).build(), { optimization: (process.env.BENCH_OPT as 'all') ?? 'all' });
} else {
  session = await ort.InferenceSession.create(path, { graphOptimizationLevel: (process.env.BENCH_OPT as 'all') ?? 'all' });
}
const loadSeconds = (performance.now() - started) / 1000;
await settle();
const rssAfterLoad = status('VmRSS');
const peakRss = status('VmHWM');

const h = size / 8;
const feeds = {
  sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 4 * h * h }, (_, i) => Math.sin(i)), [2, 4, h, h]),
  timestep: new ort.Tensor('float32', new Float32Array([999, 999]), [2]),
  encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 77 * 768 }, (_, i) => Math.cos(i) * 0.5), [2, 77, 768]),
};
await session.run(feeds);
const stepSeconds: number[] = [];
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  await session.run(feeds);
  stepSeconds.push((performance.now() - t) / 1000);
}
console.log(JSON.stringify({ loadSeconds, rssAfterLoad, peakRss, stepSeconds }));
