/** LoRA names as the nodes see them: the combo lists and the files the LoRA nodes open. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listLoras } from '../../engine/lora/index.ts';
import { listFiles } from '../../nodes/index.ts';
import type { AppConfig } from '../../server/config.ts';
import { nodeEnv } from '../../server/config.ts';
import { removeTempConfig, tempConfig } from '../server/helpers.ts';

const config: AppConfig = tempConfig('loragraph-nodes-');
const env = nodeEnv(config);
const lorasDir = env.folders.models.loras;
afterAll(() => removeTempConfig(config));

function put(rel: string, data: string | Uint8Array = 'x'): void {
  mkdirSync(dirname(join(lorasDir, rel)), { recursive: true });
  writeFileSync(join(lorasDir, rel), data);
}

describe('LoRA lists', () => {
  it('offers the same names in the combos (/api/models/loras) as /api/loras and the loaders resolve', () => {
    for (const f of ['.hidden/Kept.safetensors', 'beta.safetensors', 'Alpha.safetensors', 'Sub/gamma.SAFETENSORS', 'notes.txt']) put(f);
    const names = listLoras(lorasDir);
    expect(names).toEqual(['.hidden/Kept.safetensors', 'Alpha.safetensors', 'Sub/gamma.SAFETENSORS', 'beta.safetensors']);
    expect(listFiles(env, 'loras')).toEqual(names);
  });
});
