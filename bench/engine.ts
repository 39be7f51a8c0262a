/**
 * Engine benchmark (issue 2): on the SD1.5-shaped checkpoint, at 512x512 and 256x256,
 * - time per UNet step (batch 2, as with CFG) through the engine vs a bare onnxruntime session running the
 *   same graph with its weights as constant initializers (a standard .onnx + external weights file),
 * - load time vs reading the file + creating the bare session,
 * - RSS after load and peak RSS during load vs the weights' bytes,
 * - each step against its FLOP floor.
 * Each measurement runs in its own process so memory figures are not mixed.
 * Run alone: `node bin/loragraph.js bench --only engine`.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { ensureSd15ShapedModel, modelFolders } from '../engine/models/embedded.ts';
import { openCheckpoint } from '../engine/models/checkpoint.ts';
import { buildUNetGraph } from '../engine/models/unet.ts';
import { elementCount } from '../engine/models/weights.ts';
import { writeFully } from '../engine/safetensors/writer.ts';
import { floorSeconds, unetMacs } from './flops.ts';
import { median } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));

export interface ChildReport {
  loadSeconds: number;
  rssAfterLoad: number;
  peakRss: number;
  stepSeconds: number[];
}

function runChild(args: string[]): ChildReport {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'engine-child.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildReport;
}

/** Writes the UNet graph with every weight as a constant initializer in one external file (the standard way past 2 GB). */
export function exportBareModel(checkpointPath: string, dir: string): string {
  const modelPath = join(dir, 'unet-bare.onnx');
  if (existsSync(modelPath)) return modelPath;
  mkdirSync(dir, { recursive: true });
  const ckpt = openCheckpoint(checkpointPath);
  const built = buildUNetGraph(ckpt, ckpt.config.unet!).build();
  const model = fromBinary(ModelProtoSchema, built.bytes);
  const weightsFile = 'unet-bare.weights';
  const offsets = new Map<string, { offset: number; length: number }>();
  const fd = openSync(join(dir, weightsFile), 'w');
  try {
    let offset = 0;
    for (const w of built.weights) {
      const bytes = w.source.load();
      offsets.set(w.location, { offset, length: bytes.byteLength });
      writeFully(fd, bytes);
      offset += bytes.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  for (const init of model.graph!.initializer) {
    const location = init.externalData.find((e) => e.key === 'location');
    if (!location) continue;
    const place = offsets.get(location.value)!;
    for (const e of init.externalData) {
      if (e.key === 'location') e.value = weightsFile;
      if (e.key === 'offset') e.value = String(place.offset);
      if (e.key === 'length') e.value = String(place.length);
    }
  }
  writeFileSync(modelPath, toBinary(ModelProtoSchema, model));
  ckpt.close();
  return modelPath;
}

async function fileReadSeconds(path: string): Promise<number> {
  const started = performance.now();
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 24 })) void chunk;
  return (performance.now() - started) / 1000;
}

export interface EngineBenchResult {
  checkpoint: string;
  unetWeightBytes: number;
  fileReadSeconds: number;
  resolutions: {
    size: number;
    engineStep: number;
    bareStep: number;
    stepRatio: number;
    floorSeconds: number;
    stepVsFloor: number;
  }[];
  engineLoadSeconds: number;
  bareLoadSeconds: number;
  loadRatio: number;
  rssAfterLoadRatio: number;
  peakRssRatio: number;
  goals: Record<string, boolean>;
}

export async function benchEngine(modelsDir: string, workDir: string, sizes = [512, 256], steps = 2): Promise<EngineBenchResult> {
  const checkpoint = ensureSd15ShapedModel(modelFolders(modelsDir));
  const bare = exportBareModel(checkpoint, join(workDir, 'bare'));
  const ckpt = openCheckpoint(checkpoint);
  const config = ckpt.config.unet!;
  // What the session holds: every UNet weight as float32, whatever the file stores.
  const unetWeightBytes = ckpt.names('unet.').reduce((n, k) => n + elementCount(ckpt.weight(k)) * 4, 0);
  ckpt.close();
  const readSeconds = await fileReadSeconds(checkpoint);
  const resolutions: EngineBenchResult['resolutions'] = [];
  let engineLoad = 0;
  let bareLoad = 0;
  let rssAfter = 0;
  let peak = 0;
  for (const size of sizes) {
    const engine = runChild(['engine', checkpoint, String(size), String(steps)]);
    const baseline = runChild(['bare', bare, String(size), String(steps)]);
    if (size === sizes[0]) {
      engineLoad = engine.loadSeconds;
      bareLoad = baseline.loadSeconds;
      rssAfter = engine.rssAfterLoad;
      peak = engine.peakRss;
    }
    const floor = floorSeconds(unetMacs(config, 2, size / 8, size / 8, 77));
    const engineStep = median(engine.stepSeconds);
    const bareStep = median(baseline.stepSeconds);
    resolutions.push({ size, engineStep, bareStep, stepRatio: engineStep / bareStep, floorSeconds: floor, stepVsFloor: engineStep / floor });
  }
  const loadRatio = engineLoad / (readSeconds + bareLoad);
  const result: EngineBenchResult = {
    checkpoint,
    unetWeightBytes,
    fileReadSeconds: readSeconds,
    resolutions,
    engineLoadSeconds: engineLoad,
    bareLoadSeconds: bareLoad,
    loadRatio,
    rssAfterLoadRatio: rssAfter / unetWeightBytes,
    peakRssRatio: peak / unetWeightBytes,
    goals: {
      'step ratio <= 1.05': resolutions.every((r) => r.stepRatio <= 1.05),
      'load <= 1.5x (file read + bare session)': loadRatio <= 1.5,
      'RSS after load <= 1.3x weight bytes': rssAfter / unetWeightBytes <= 1.3,
      'step <= 2x FLOP floor': resolutions.every((r) => r.stepVsFloor <= 2),
    },
  };
  return result;
}

export function printEngineTable(r: EngineBenchResult): void {
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  console.log(`\nEngine (UNet of ${r.checkpoint}, fp32 weights ${gb(r.unetWeightBytes)}; file size ${gb(statSync(r.checkpoint).size)})`);
  console.table(
    r.resolutions.map((x) => ({
      size: `${x.size}x${x.size}`,
      'engine step s': x.engineStep.toFixed(2),
      'bare step s': x.bareStep.toFixed(2),
      'step ratio': x.stepRatio.toFixed(3),
      'FLOP floor s': x.floorSeconds.toFixed(2),
      'step / floor': x.stepVsFloor.toFixed(2),
    })),
  );
  console.table({
    load: { engine: `${r.engineLoadSeconds.toFixed(1)} s`, baseline: `${(r.fileReadSeconds + r.bareLoadSeconds).toFixed(1)} s (read ${r.fileReadSeconds.toFixed(1)} + bare ${r.bareLoadSeconds.toFixed(1)})`, ratio: r.loadRatio.toFixed(2) },
    'RSS after load': { engine: `${r.rssAfterLoadRatio.toFixed(2)}x weights`, baseline: '', ratio: r.rssAfterLoadRatio.toFixed(2) },
    'peak RSS in load': { engine: `${r.peakRssRatio.toFixed(2)}x weights`, baseline: '', ratio: r.peakRssRatio.toFixed(2) },
  });
  for (const [goal, ok] of Object.entries(r.goals)) console.log(`${ok ? 'MET ' : 'MISS'} ${goal}`);
}
