/**
 * The `loragraph` command as users run it (a child process): a workflow on the embedded model is
 * deterministic by seed, `noise` writes torch's noise, `eval` runs one module of a checkpoint.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readTensors } from '../../engine/models/module-check.ts';
import { repoRoot, sharedFixture } from '../helpers/fixtures.ts';

const run = promisify(execFile);
const bin = join(repoRoot, 'bin', 'loragraph.js');
const dir = mkdtempSync(join(tmpdir(), 'lg-cli-'));
const folders = ['--models', join(dir, 'models'), '--input', join(dir, 'input'), '--data', join(dir, 'data')];

async function loragraph(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [bin, ...args], { cwd: repoRoot, maxBuffer: 1 << 24 });
}

describe('loragraph CLI', () => {
  it('run: the same seed gives a byte-identical PNG, another seed a different one', async () => {
    const out = (name: string) => ['--out', join(dir, name), ...folders];
    await loragraph('run', 'workflows/txt2img.json', '-q', ...out('a'));
    await loragraph('run', 'workflows/txt2img.json', '-q', ...out('b'));
    await loragraph('run', 'workflows/txt2img.json', '-q', '--set', 'KSampler.seed=43', ...out('c'));
    const png = (d: string) => readFileSync(join(dir, d, readdirSync(join(dir, d))[0]));
    expect(png('a').equals(png('b'))).toBe(true);
    expect(png('a').equals(png('c'))).toBe(false);
    expect(png('a').subarray(1, 4).toString()).toBe('PNG');
  });

  const randn = sharedFixture('torch-randn', 'seed42_1x4x13x17.safetensors');
  it.skipIf(!randn)('noise: writes torch.randn for the seed and shape', async () => {
    const file = join(dir, 'noise.safetensors');
    await loragraph('noise', '--seed', '42', '--shape', '1,4,13,17', '--out', file);
    const got = readTensors(file).get('noise')!;
    const want = readTensors(randn!).get('noise')!;
    expect(got.shape).toEqual([1, 4, 13, 17]);
    expect(Buffer.from((got.data as Float32Array).buffer).equals(Buffer.from((want.data as Float32Array).buffer))).toBe(true);
  });

  const reference = sharedFixture('tiny-sd-reference', 'tiny-sd1.reference.safetensors');
  const diffusers = sharedFixture('tiny-sd-reference', 'tiny-sd1');
  it.skipIf(!reference || !diffusers)('eval: runs the UNet of a diffusers folder on reference inputs', async () => {
    const file = join(dir, 'unet-out.safetensors');
    const { stdout } = await loragraph('eval', diffusers!, '--module', 'unet', '--inputs', reference!, '--out', file);
    expect(stdout).toContain('unet.out [2, 4, 8, 8]');
    const got = readTensors(file).get('unet.out')!.data as Float32Array;
    const want = readTensors(reference!).get('unet.out')!.data as Float32Array;
    const scale = Math.max(...want.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale).toBeLessThan(1e-4);
  });

  it('reports a user error with its message and exit code 2', async () => {
    const failure = await loragraph('noise', '--seed', '-1', '--shape', '1', '--out', join(dir, 'x')).catch((e: { code: number; stderr: string }) => e);
    expect((failure as { code: number }).code).toBe(2);
    expect((failure as { stderr: string }).stderr).toMatch(/seed/);
  });
});
