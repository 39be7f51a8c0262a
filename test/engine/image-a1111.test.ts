import { describe, expect, it } from 'vitest';
import {
  a1111SamplerName,
  a1111ScheduleType,
  formatA1111Parameters,
  parseA1111Parameters,
  type A1111Generation,
} from '../../engine/image/index.ts';

const base: A1111Generation = {
  positive: 'a cat, "sitting"\non a mat, <lora:fluffy:0.8>',
  negative: 'blurry, bad hands',
  steps: 20,
  sampler: 'dpmpp_2m',
  scheduler: 'karras',
  cfg: 7.5,
  seed: 2n ** 63n + 5n,
  width: 512,
  height: 768,
};

describe('A1111 parameters', () => {
  it('formats as create_infotext does: display names, quoted values, optional keys in order', () => {
    const text = formatA1111Parameters({
      ...base,
      model: 'my, model',
      modelHash: 'abcdef1234',
      denoise: 1,
      clipSkip: 2,
      loraHashes: { 'fluffy:v2,final': '1234abcd', other: '5678' },
      version: 'LoraGraph 0.1.0',
    });
    expect(text).toBe(
      'a cat, "sitting"\non a mat, <lora:fluffy:0.8>\n' +
        'Negative prompt: blurry, bad hands\n' +
        'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 9223372036854775813, ' +
        'Size: 512x768, Model hash: abcdef1234, Model: "my, model", Clip skip: 2, ' +
        'Lora hashes: "fluffyv2final: 1234abcd, other: 5678", Version: LoraGraph 0.1.0',
    );
  });

  it('omits an empty negative prompt, a full denoise and clip skip 1', () => {
    const text = formatA1111Parameters({ ...base, negative: '', sampler: 'euler_ancestral', scheduler: 'normal', cfg: 7, denoise: 1, clipSkip: 1 });
    expect(text).toBe(
      'a cat, "sitting"\non a mat, <lora:fluffy:0.8>\n' +
        'Steps: 20, Sampler: Euler a, Schedule type: Normal, CFG scale: 7, Seed: 9223372036854775813, Size: 512x768',
    );
    expect(formatA1111Parameters({ ...base, denoise: 0.55 })).toContain(', Size: 512x768, Denoising strength: 0.55');
    expect(formatA1111Parameters({ ...base, model: 'sdxl:base' })).toContain(', Model: "sdxl:base"');
  });

  it('maps ComfyUI sampler and scheduler names, passing unknown ones through', () => {
    expect(['euler', 'dpmpp_2m_sde_gpu', 'dpmpp_sde', 'uni_pc', 'lcm', 'heunpp2'].map(a1111SamplerName)).toEqual([
      'Euler',
      'DPM++ 2M SDE',
      'DPM++ SDE',
      'UniPC',
      'LCM',
      'heunpp2',
    ]);
    expect(['sgm_uniform', 'ddim_uniform', 'exponential', 'linear_quadratic'].map(a1111ScheduleType)).toEqual([
      'SGM Uniform',
      'DDIM',
      'Exponential',
      'linear_quadratic',
    ]);
    expect(a1111SamplerName('constructor')).toBe('constructor');
  });

  it('parses back what it formats, including commas, quotes and multi-line prompts', () => {
    const gen = {
      ...base,
      positive: 'line one, with commas\nSteps: is just a word here\nNegative prompt: also in the prompt',
      negative: 'ugly,\nsecond "negative" line',
      model: 'model "v2": final, really',
      loraHashes: { a: '1', b: '2' },
    };
    const parsed = parseA1111Parameters(formatA1111Parameters(gen));
    expect(parsed.positive).toBe(gen.positive);
    expect(parsed.negative).toBe(gen.negative);
    expect(parsed.options).toEqual({
      Steps: '20',
      Sampler: 'DPM++ 2M',
      'Schedule type': 'Karras',
      'CFG scale': '7.5',
      Seed: '9223372036854775813',
      Size: '512x768',
      Model: 'model "v2": final, really',
      'Lora hashes': 'a: 1, b: 2',
    });
  });

  it('splits texts without a negative prompt, without a prompt, or without settings', () => {
    expect(parseA1111Parameters('just a prompt\nSteps: 4, Seed: 1')).toEqual({
      positive: 'just a prompt',
      negative: '',
      options: { Steps: '4', Seed: '1' },
    });
    expect(parseA1111Parameters('Negative prompt: bad\nSteps: 4')).toEqual({ positive: '', negative: 'bad', options: { Steps: '4' } });
    expect(parseA1111Parameters('Steps: 4, Sampler: Euler')).toEqual({
      positive: '',
      negative: '',
      options: { Steps: '4', Sampler: 'Euler' },
    });
    expect(parseA1111Parameters('  no settings at all, Steps: 4  ')).toEqual({
      positive: 'no settings at all, Steps: 4',
      negative: '',
      options: {},
    });
  });

  it('reads settings lines written by other tools: old unquoted values, bare flags, escapes', () => {
    const parsed = parseA1111Parameters(
      'p\nSteps: 30, Sampler: DPM++ 2M Karras, Model: sd:xl, Tiling, Hires upscaler: "4x \\"Ultra\\", v2", ENSD: 31337',
    );
    expect(parsed.options).toEqual({
      Steps: '30',
      Sampler: 'DPM++ 2M Karras',
      Model: 'sd:xl',
      'Hires upscaler': '4x "Ultra", v2',
      ENSD: '31337',
    });
  });
});
