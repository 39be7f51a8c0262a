/**
 * Files and models that change under a running process: an unloaded model, a LoRA re-saved under the same
 * name, a checkpoint replaced on disk. None may be served stale, and none may silently drop a LoRA.
 */
import { mkdirSync, mkdtempSync, renameSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeKohyaLora } from '../../engine/lora/index.ts';
import { openCheckpoint } from '../../engine/models/checkpoint.ts';
import { ensureTinyRandomModel, TINY_RANDOM_CHECKPOINT } from '../../engine/models/embedded.ts';
import { weightSource } from '../../engine/models/layers.ts';
import { Graph, ops } from '../../engine/onnx/index.ts';
import { createSession, ort } from '../../engine/runtime/session.ts';
import { f32Entry, SafetensorsFile, writeSafetensors } from '../../engine/safetensors/index.ts';
import { nodeEnv, resolveConfig } from '../../server/config.ts';
import { renderDemo, type DemoRequest } from '../../server/workflow/demo.ts';
import type { NodeEnv } from '../../nodes/index.ts';

const root = mkdtempSync(join(tmpdir(), 'lg-stale-'));
let env: NodeEnv;
const loraFile = (env: NodeEnv) => join(env.folders.models.loras, 'style.safetensors');

function newEnv(name: string): NodeEnv {
  const dir = join(root, name);
  const config = resolveConfig({ models: join(root, 'models'), output: join(dir, 'out'), input: join(dir, 'in'), temp: join(dir, 'temp'), data: join(dir, 'data') }, {});
  return nodeEnv(config);
}

function writeLora(env: NodeEnv, seed: number): void {
  const ckpt = openCheckpoint(join(env.folders.models.checkpoints, TINY_RANDOM_CHECKPOINT));
  mkdirSync(env.folders.models.loras, { recursive: true });
  const tmp = join(root, `lora-${seed}.safetensors`);
  writeKohyaLora(ckpt, tmp, { rank: 4, seed, scale: 0.3 });
  ckpt.close();
  renameSync(tmp, loraFile(env));
  // A distinct modification time even when two saves fall in the same clock tick.
  const t = new Date(Date.now() + seed * 1000);
  utimesSync(loraFile(env), t, t);
}

const request: DemoRequest = { prompt: 'a red circle', seed: 3, steps: 4, loras: [{ name: 'style.safetensors', options: '1' }] };
const render = async (e: NodeEnv, r: DemoRequest = request) => (await renderDemo(e, [r], TINY_RANDOM_CHECKPOINT))[0].png;

beforeAll(() => {
  env = newEnv('main');
  ensureTinyRandomModel(env.folders.models);
  writeLora(env, 1);
});

describe('nothing is served stale', () => {
  it('an unloaded model is loaded again with its LoRAs (not the cached outputs of the released one)', async () => {
    const first = await render(env);
    const withoutUnetLora = await render(newEnv('other'), { ...request, loras: [{ name: 'style.safetensors', options: '1:unet=0' }] });
    await env.models.clear();
    const again = await render(env);
    expect(again.equals(first)).toBe(true);
    expect(again.equals(withoutUnetLora)).toBe(false);
  });

  it('a LoRA re-saved under the same name is read again', async () => {
    const before = await render(env);
    writeLora(env, 2);
    const after = await render(env);
    expect(after.equals(before)).toBe(false);
    expect(after.equals(await render(newEnv('fresh')))).toBe(true);
  });

  it('a checkpoint replaced on disk is not read in place by a session built later', async () => {
    const dir = join(root, 'replace');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'w.safetensors');
    writeSafetensors(path, [f32Entry('w', [4], new Float32Array([1, 2, 3, 4]))]);
    const file = SafetensorsFile.open(path);
    // Replace the file (new inode, other bytes and a longer header) while the old one is still open.
    const replacement = join(dir, 'new.safetensors');
    writeSafetensors(replacement, [f32Entry('w', [4], new Float32Array([9, 9, 9, 9]))], { padding: 'x'.repeat(100) });
    renameSync(replacement, path);
    const info = file.info('w');
    const g = new Graph('t');
    const x = g.input('x', 'float32', [4]);
    g.output(ops.add(x, g.weight(weightSource('w', { file, tensor: 'w', dtype: info.dtype, shape: info.shape, offset: info.offset, byteLength: info.byteLength }))), 'y');
    const session = await createSession(g.build(), { scratchDir: join(dir, 'scratch') });
    const y = (await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [4]) })).y.data as Float32Array;
    expect([...y]).toEqual([1, 2, 3, 4]);
    file.close();
  });
});
