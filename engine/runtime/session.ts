import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import type { BuiltModel, WeightSource } from '../onnx/index.ts';
import { writeFully } from '../safetensors/index.ts';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface SessionOptions {
  readonly provider?: ExecutionProvider;
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Where session folders are laid out (default: the system temp folder). Best on the checkpoints'
   * filesystem, so weights are hard-linked rather than copied. The folder is deleted as soon as the session
   * exists; onnxruntime keeps its memory mappings.
   */
  readonly scratchDir?: string;
}

/** Tensors written to weights.bin start on page boundaries so onnxruntime can map each one directly. */
const ALIGN = 4096;

/**
 * Lays out a session folder: the model protobuf plus the files its weights live in. A weight already in a
 * checkpoint file is read in place from a hard link to that file (no copy: onnxruntime only accepts external
 * data inside the model's folder); if linking is impossible (another filesystem), or a weight has no file,
 * its bytes are written to weights.bin.
 *
 * Measured on the SD1.5-shaped UNet: handing onnxruntime the weights as in-memory `externalData` made it copy
 * them (peak RSS 2.7x the weights) and took several times longer than files it maps (peak 1.0x).
 */
function writeSessionFolder(model: BuiltModel, dir: string): string {
  const proto = fromBinary(ModelProtoSchema, model.bytes);
  const places = new Map<string, { file: string; offset: number; length: number }>();
  const links = new Map<string, string | undefined>();
  const linked = (stored: NonNullable<WeightSource['stored']>): string | undefined => {
    const { path, identity } = stored;
    if (!links.has(path)) {
      const name = `source${links.size}.bin`;
      try {
        const now = statSync(path);
        if (now.dev !== identity.dev || now.ino !== identity.ino) throw new Error('replaced since it was opened');
        linkSync(path, join(dir, name));
        links.set(path, name);
      } catch {
        links.set(path, undefined);
      }
    }
    return links.get(path);
  };
  const fd = openSync(join(dir, 'weights.bin'), 'w');
  let offset = 0;
  try {
    for (const w of model.weights) {
      const stored = w.source.stored;
      const link = stored && linked(stored);
      if (stored && link) {
        places.set(w.location, { file: link, offset: stored.offset, length: stored.byteLength });
        continue;
      }
      const bytes = w.source.load();
      places.set(w.location, { file: 'weights.bin', offset, length: bytes.byteLength });
      writeFully(fd, bytes, offset);
      offset += Math.ceil(bytes.byteLength / ALIGN) * ALIGN;
    }
  } finally {
    closeSync(fd);
  }
  for (const init of proto.graph?.initializer ?? []) {
    const location = init.externalData.find((e) => e.key === 'location');
    const place = location && places.get(location.value);
    if (!place) continue;
    for (const e of init.externalData) {
      if (e.key === 'location') e.value = place.file;
      else if (e.key === 'offset') e.value = String(place.offset);
      else if (e.key === 'length') e.value = String(place.length);
    }
  }
  const modelPath = join(dir, 'model.onnx');
  const out = openSync(modelPath, 'w');
  try {
    writeFully(out, toBinary(ModelProtoSchema, proto), 0);
  } finally {
    closeSync(out);
  }
  return modelPath;
}

const swept = new Set<string>();

/**
 * Removes session folders left by processes that died while creating a session (their hard links would keep
 * deleted checkpoints on disk). Once per scratch folder and process; folders of live processes are kept.
 */
function removeOrphanedFolders(scratch: string): void {
  if (swept.has(scratch)) return;
  swept.add(scratch);
  for (const name of readdirSync(scratch)) {
    const pid = Number(/^session-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(scratch, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates an onnxruntime session for a built graph whose weights come from the checkpoint on disk. */
export async function createSession(model: BuiltModel, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [options.provider ?? 'cpu'],
    graphOptimizationLevel: options.optimization ?? 'all',
  };
  if (model.weights.length === 0) return ort.InferenceSession.create(model.bytes, sessionOptions);
  const scratch = options.scratchDir ?? join(tmpdir(), 'loragraph-scratch');
  mkdirSync(scratch, { recursive: true });
  removeOrphanedFolders(scratch);
  const dir = mkdtempSync(join(scratch, `session-${process.pid}-`));
  try {
    return await ort.InferenceSession.create(writeSessionFolder(model, dir), sessionOptions);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { ort };
