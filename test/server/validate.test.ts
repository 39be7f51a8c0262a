import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../engine/json.ts';
import { ensureDefaultModel, modelFolders } from '../../engine/models/embedded.ts';
import { NODES, type NodeEnv } from '../../nodes/index.ts';
import { serverThreadEnv, type AppConfig } from '../../server/config.ts';
import { validatePrompt, type Validation } from '../../server/executor/validate.ts';
import { removeTempConfig, tempConfig, txt2img } from './helpers.ts';

let env: NodeEnv;
let config: AppConfig;

beforeAll(() => {
  config = tempConfig('loragraph-validate-');
  ensureDefaultModel(modelFolders(config.modelsDir));
  env = serverThreadEnv(config);
});

afterAll(() => removeTempConfig(config));

const validate = (prompt: unknown, targets?: string[]) => validatePrompt(prompt as Json, NODES, env, targets);

/** The refusal, or a failed test. */
function refused(v: Validation) {
  if (v.ok) throw new Error('expected the prompt to be refused');
  return v;
}

/** The error types reported for one node. */
const typesOf = (v: Validation, node: string) => (v.nodeErrors[node]?.errors ?? []).map((e) => e.type);

describe('prompt validation (ComfyUI error types)', () => {
  it('accepts the example workflow, lists its output and keeps the seed range to 2^64−1', () => {
    const v = validate(txt2img({ 3: { seed: 2n ** 64n - 1n } }));
    expect(v).toMatchObject({ ok: true, outputs: ['9'], nodeErrors: {} });
    // nodes/coerce reports a seed beyond 2^64−1 as not convertible (ComfyUI says value_bigger_than_max).
    const over = refused(validate(txt2img({ 3: { seed: 2n ** 64n } })));
    expect(typesOf(over, '3')).toEqual(['invalid_input_type']);
    expect(over.nodeErrors['3'].errors[0].details).toContain('18446744073709551615');
  });

  it('refuses prompts that are not graphs, unknown node types, nodes without class_type, and prompts without outputs', () => {
    expect(refused(validate([1, 2])).error.type).toBe('invalid_prompt');
    const unknown = refused(validate({ ...txt2img(), 12: { class_type: 'UpscaleWithMagic', inputs: {} } }));
    expect(unknown.error).toMatchObject({ type: 'missing_node_type', details: "Node ID '#12'", extra_info: { node_id: '12', class_type: 'UpscaleWithMagic' } });
    expect(refused(validate({ ...txt2img(), 12: { inputs: {} } })).error.type).toBe('missing_node_type');
    const noOutputs = txt2img();
    delete (noOutputs as Record<string, unknown>)['9'];
    expect(refused(validate(noOutputs)).error.type).toBe('prompt_no_outputs');
  });

  it('reports each input problem on its node, with ComfyUI types, and refuses when no output is left', () => {
    const prompt = txt2img({
      3: { steps: 0, sampler_name: 'warp_drive', cfg: 'lots' },
      5: { width: 99999 },
      8: { vae: ['5', 0] },
    });
    delete prompt['6'].inputs.clip;
    const v = refused(validate(prompt));
    expect(v.error.type).toBe('prompt_outputs_failed_validation');
    expect(typesOf(v, '3')).toEqual(['value_smaller_than_min', 'invalid_input_type', 'value_not_in_list']);
    expect(typesOf(v, '5')).toEqual(['value_bigger_than_max']);
    expect(typesOf(v, '6')).toEqual(['required_input_missing']);
    expect(v.nodeErrors['6'].errors[0]).toMatchObject({ details: 'clip', extra_info: { input_name: 'clip' } });
    expect(typesOf(v, '8')).toEqual(['return_type_mismatch']);
    expect(v.nodeErrors['8'].errors[0].details).toBe('vae, received_type(LATENT) mismatch input_type(VAE)');
    expect(v.nodeErrors['8']).toMatchObject({ class_type: 'VAEDecode', dependent_outputs: ['9'] });
    // Nodes that fail only because something upstream failed are not listed.
    expect(v.nodeErrors['9']).toBeUndefined();
    expect(v.error.details).toContain('Value not in list');
  });

  it('reports links to missing nodes, to missing output slots, and malformed links', () => {
    const v = refused(validate(txt2img({ 3: { positive: ['42', 0], negative: ['7', 3], latent_image: ['5', 0, 1] } })));
    expect(typesOf(v, '3')).toEqual(['bad_linked_input', 'bad_linked_input', 'bad_linked_input']);
    expect(v.nodeErrors['3'].errors.map((e) => e.message).join('\n')).toMatch(/node 42, which is not in the prompt[\s\S]*has 1 output/);
  });

  it('checks combo lists against the models folder and runs node validate hooks', () => {
    const v = refused(validate(txt2img({ 4: { ckpt_name: 'missing.safetensors' } })));
    expect(v.nodeErrors['4'].errors[0]).toMatchObject({ type: 'value_not_in_list' });
    expect(v.nodeErrors['4'].errors[0].details).toMatch(/^ckpt_name: 'missing\.safetensors' not in \[.*"loragraph-tiny-random\.safetensors".*\]$/);
    const img = refused(
      validate({
        1: { class_type: 'LoadImage', inputs: { image: 'nowhere.png' } },
        2: { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
      }),
    );
    expect(typesOf(img, '1')).toEqual(['custom_validation_failed']);
    expect(img.nodeErrors['1'].errors[0].details).toContain('nowhere.png');
  });

  it('reports dependency cycles on every node of the cycle', () => {
    const v = refused(
      validate({
        1: { class_type: 'VAEEncode', inputs: { pixels: ['2', 0], vae: ['4', 2] } },
        2: { class_type: 'VAEDecode', inputs: { samples: ['1', 0], vae: ['4', 2] } },
        4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'loragraph-tiny-random.safetensors' } },
        9: { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'x' } },
      }),
    );
    expect(typesOf(v, '1')).toEqual(['dependency_cycle']);
    expect(typesOf(v, '2')).toEqual(['dependency_cycle']);
    expect(v.nodeErrors['1'].errors[0].details).toMatch(/VAEDecode.*VAEEncode|VAEEncode.*VAEDecode/);
  });

  it('queues the valid outputs of a partly valid prompt and reports the others (ComfyUI §1.1)', () => {
    const prompt = { ...txt2img(), 10: { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'wrong' } } };
    const v = validate(prompt);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.outputs).toEqual(['9']);
    expect(v.nodeErrors['10']).toMatchObject({ class_type: 'SaveImage', dependent_outputs: ['10'] });
    expect(v.nodeErrors['10'].errors[0].type).toBe('return_type_mismatch');
    // partial_execution_targets restricts the outputs.
    expect(validate(prompt, ['9'])).toMatchObject({ ok: true, outputs: ['9'], nodeErrors: {} });
    expect(refused(validate(prompt, ['3'])).error.type).toBe('prompt_no_outputs');
  });

  it('unwraps {"__value__": …} constants and fills absent widget inputs that have defaults', () => {
    const prompt = txt2img({ 3: { cfg: { __value__: 7.5 } } });
    delete prompt['3'].inputs.denoise;
    const v = validate(prompt);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.prompt['3'].inputs.cfg).toBe(7.5);
  });
});
