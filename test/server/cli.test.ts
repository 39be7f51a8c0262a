/** `loragraph run`: validation before running, PNG workflows, and headless submission to a server (--server). */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comfyPngText, encodePng } from '../../engine/image/index.ts';
import { stringifyJson } from '../../engine/json.ts';
import type { AppConfig } from '../../server/config.ts';
import type { RunningServer } from '../../server/serve.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { removeTempConfig, startTestServer, tempConfig, txt2img } from './helpers.ts';

let config: AppConfig;
let server: RunningServer;

beforeAll(async () => {
  config = tempConfig('loragraph-cli-');
  server = await startTestServer(config);
});

afterAll(async () => {
  await server?.close();
  removeTempConfig(config);
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const folders = ['--models', config.modelsDir, '--input', config.inputDir, '--output', config.outputDir, '--data', config.dataDir];
  const child = spawn(process.execPath, ['bin/loragraph.js', ...args, ...folders], { cwd: repoRoot, env: { ...process.env, LORAGRAPH_TEMP: config.tempDir } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const file = (name: string, prompt: unknown) => {
  const path = join(config.dataDir, name);
  writeFileSync(path, stringifyJson(prompt));
  return path;
};

describe('loragraph run', () => {
  it('prints the per-node validation errors and exits non-zero without running anything', async () => {
    const r = await cli(['run', file('bad.json', txt2img({ 3: { steps: 0 }, 5: { width: 1 } }))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Prompt outputs failed validation');
    expect(r.stderr).toContain('node 3 (KSampler): value_smaller_than_min');
    expect(r.stderr).toContain('node 5 (EmptyLatentImage): value_smaller_than_min');
  });

  it('runs the workflow embedded in a PNG', async () => {
    const png = join(config.dataDir, 'made-elsewhere.png');
    const prompt = txt2img({ 3: { steps: 2 }, 9: { filename_prefix: 'from_png' } });
    writeFileSync(png, await encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) }, comfyPngText({ prompt: stringifyJson(prompt) })));
    const r = await cli(['run', png, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/from_png_00001_\.png$/);
    expect(existsSync(join(config.outputDir, 'from_png_00001_.png'))).toBe(true);
  });

  it('--server submits to a running server, downloads the images with --out, and fails on refusals', async () => {
    const out = join(config.dataDir, 'downloads');
    const ok = await cli(['run', join(repoRoot, 'workflows', 'txt2img.editor.json'), '--server', server.url, '--out', out, '--set', '3.steps=2', '-q']);
    expect(ok.code, ok.stderr).toBe(0);
    const saved = ok.stdout.trim();
    expect(saved).toMatch(/downloads\/editor_\d{5}_\.png$/);
    expect(existsSync(saved)).toBe(true);

    const urls = await cli(['run', file('good.json', txt2img({ 3: { steps: 2 } })), '--server', `${server.url}/`, '-q']);
    expect(urls.code, urls.stderr).toBe(0);
    expect(urls.stdout.trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/view\?filename=txt2img_\d{5}_\.png&subfolder=&type=output$/);

    const refused = await cli(['run', file('bad-remote.json', txt2img({ 3: { sampler_name: 'nope' } })), '--server', server.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('node 3 (KSampler): value_not_in_list');
  });
});
