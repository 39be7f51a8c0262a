/** The prompt-emphasis setting: chosen by flag or environment, and what CLIPTextEncode does with it. */
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../engine/errors.ts';
import { ensureDefaultModel, DEMO_CHECKPOINT } from '../../engine/models/embedded.ts';
import type { Conditioning } from '../../engine/pipeline/conditioning.ts';
import { NODES, type NodeContext } from '../../nodes/index.ts';
import type { ConditioningValue } from '../../nodes/values.ts';
import { nodeEnv, resolveConfig, type AppConfig } from '../../server/config.ts';
import { removeTempConfig, tempConfig } from '../server/helpers.ts';

const config = tempConfig('loragraph-emphasis-');
afterAll(() => removeTempConfig(config));

describe('emphasis setting', () => {
  it('defaults to ComfyUI weighting; --emphasis and LORAGRAPH_EMPHASIS choose, unknown modes are refused', () => {
    const dirs = { models: config.modelsDir, input: config.inputDir, output: config.outputDir, temp: config.tempDir, data: config.dataDir };
    expect(resolveConfig(dirs, {}).emphasis).toBe('comfy');
    expect(resolveConfig(dirs, { LORAGRAPH_EMPHASIS: 'a1111' }).emphasis).toBe('a1111');
    expect(resolveConfig({ ...dirs, emphasis: 'comfy' }, { LORAGRAPH_EMPHASIS: 'a1111' }).emphasis).toBe('comfy');
    expect(() => resolveConfig(dirs, { LORAGRAPH_EMPHASIS: 'sdnext' })).toThrow(InvalidInputError);
    expect(() => resolveConfig(dirs, { LORAGRAPH_EMPHASIS: 'sdnext' })).toThrow(/unknown prompt emphasis "sdnext"; choose one of comfy, a1111/);
  });

  it('CLIPTextEncode weights (word:1.5) as the setting says, and unweighted prompts the same either way', async () => {
    ensureDefaultModel(nodeEnv(config).folders.models);
    const encode = async (mode: AppConfig['emphasis'], text: string): Promise<Conditioning> => {
      const ctx = { env: nodeEnv({ ...config, emphasis: mode }) } as NodeContext;
      const [, clip] = (await NODES.get('CheckpointLoaderSimple')!.execute({ ckpt_name: DEMO_CHECKPOINT }, ctx)).outputs;
      const [cond] = (await NODES.get('CLIPTextEncode')!.execute({ text, clip }, ctx)).outputs as [ConditioningValue];
      return cond[0].cond;
    };
    const weighted = 'a (red:1.5) circle';
    const [comfy, a1111] = [await encode('comfy', weighted), await encode('a1111', weighted)];
    const maxDiff = (a: Conditioning, b: Conditioning) => a.context.reduce((m, v, i) => Math.max(m, Math.abs(v - b.context[i])), 0);
    expect(maxDiff(comfy, a1111)).toBeGreaterThan(1e-3);
    expect(maxDiff(await encode('comfy', 'a red circle'), await encode('a1111', 'a red circle'))).toBe(0);
  });
});
