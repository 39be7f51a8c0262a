/** LoRA names as the nodes see them: the combo lists and the files the LoRA nodes open. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringifyJson } from '../../engine/json.ts';
import { listLoras } from '../../engine/lora/index.ts';
import { writeSafetensors } from '../../engine/safetensors/writer.ts';
import { listFiles, NODES, type NodeContext, type NodeEnv } from '../../nodes/index.ts';
import { nodeEnv, type AppConfig } from '../../server/config.ts';
import { Executor } from '../../server/executor/executor.ts';
import { removeTempConfig, tempConfig } from '../server/helpers.ts';

const configs: AppConfig[] = [];
afterAll(() => configs.forEach(removeTempConfig));

/** A node environment on empty temporary folders. */
function freshEnv(): NodeEnv {
  const config = tempConfig('loragraph-nodes-');
  configs.push(config);
  return nodeEnv(config);
}

function put(env: NodeEnv, rel: string, data = 'x'): void {
  const path = join(env.folders.models.loras, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** A one-module LoRA whose trigger word is `trigger` (kohya's dataset folder name). */
function writeLora(env: NodeEnv, rel: string, trigger: string): void {
  const path = join(env.folders.models.loras, rel);
  mkdirSync(dirname(path), { recursive: true });
  const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
  const key = 'lora_unet_down_blocks_0_attentions_0_proj_in';
  writeSafetensors(
    path,
    [
      { name: `${key}.lora_down.weight`, dtype: 'F32', shape: [4, 32], data: f32(Array(128).fill(0.01)) },
      { name: `${key}.lora_up.weight`, dtype: 'F32', shape: [32, 4], data: f32(Array(128).fill(0.01)) },
      { name: `${key}.alpha`, dtype: 'F32', shape: [], data: f32([2]) },
    ],
    { ss_tag_frequency: JSON.stringify({ [`10_${trigger}`]: { tag: 1 } }) },
  );
}

describe('LoRA lists', () => {
  it('offers the same names in the combos (/api/models/loras) as /api/loras and the loaders resolve', () => {
    const env = freshEnv();
    for (const f of ['.hidden/Kept.safetensors', 'beta.safetensors', 'Alpha.safetensors', 'Sub/gamma.SAFETENSORS', 'notes.txt']) put(env, f);
    const names = listLoras(env.folders.models.loras);
    expect(names).toEqual(['.hidden/Kept.safetensors', 'Alpha.safetensors', 'Sub/gamma.SAFETENSORS', 'beta.safetensors']);
    expect(listFiles(env, 'loras')).toEqual(names);
  });
});

describe('LoraInfo', () => {
  const LoraInfo = NODES.get('LoraInfo')!;

  it('shows a LoRA replaced under the same name afresh, not the cached info', async () => {
    const env = freshEnv();
    const executor = new Executor(NODES, env);
    const prompt = { '1': { class_type: 'LoraInfo', inputs: { lora_name: 'Styles/Detail.safetensors' } } };
    const triggers = async () => {
      const result = await executor.execute({ promptId: 'p', prompt, promptText: stringifyJson(prompt) }, {}, () => false);
      expect(result.status).toBe('success');
      return result.outputs['1'].text;
    };
    writeLora(env, 'Styles/Detail.safetensors', 'redcircle');
    expect(await triggers()).toEqual(['redcircle', expect.any(String)]);
    writeLora(env, 'Styles/Detail.safetensors', 'bluesquare');
    expect(await triggers()).toEqual(['bluesquare', expect.any(String)]);
  });

  it('opens the LoRA by any name the loaders resolve: bare, without the extension, in another case', async () => {
    const env = freshEnv();
    writeLora(env, 'Styles/Detail.safetensors', 'redcircle');
    const ctx = { env } as NodeContext;
    for (const name of ['Styles/Detail.safetensors', 'detail', 'styles/DETAIL', 'Detail.safetensors']) {
      expect((await LoraInfo.execute({ lora_name: name }, ctx)).outputs[0]).toBe('redcircle');
    }
  });
});
