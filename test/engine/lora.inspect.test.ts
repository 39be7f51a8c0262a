import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLoraInspection, inspectLora } from '../../engine/lora/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const lyco = sharedFixture('lycoris-reference');
const sdxl = sharedFixture('tiny-sdxl-full', 'sdxl_lora.safetensors');

describe.skipIf(!lyco || !sdxl)('inspectLora', () => {
  it('describes a LoCon with Tucker cores', () => {
    const info = inspectLora(join(lyco!, 'locon_tucker.safetensors'));
    expect(info).toMatchObject({
      tensors: 932,
      keyStyles: ['kohya'],
      families: { LoRA: 244, 'LoCon (Tucker)': 50 },
      baseModel: { family: 'SD1.x', decidedBy: 'metadata ss_base_model_version=sd_v1' },
      ranks: { LoRA: { min: 4, max: 4 }, 'LoCon (Tucker)': { min: 4, max: 4 } },
      alpha: { min: 1, max: 1, missing: 0 },
      modules: { total: 294, byComponent: { te: 18, unet: 276 }, byGroup: { in: 99, mid: 18, out: 159 } },
      unused: { count: 0 },
    });
    expect(info.triggerWords.words).toEqual(['locon_tuckertrigger']);
    expect(info.metadata.summary).toEqual({ ss_network_module: 'lycoris.kohya', ss_network_args: '{"algo": "locon"}' });
    const text = formatLoraInspection(info);
    expect(text).toMatch(/^.*locon_tucker\.safetensors \(0\.6 MiB, 932 tensors, keys: kohya\)$/m);
    expect(text).toContain('base model: SD1.x (metadata ss_base_model_version=sd_v1)');
    expect(text).toContain('families: LoRA 244, LoCon (Tucker) 50');
    expect(text).toContain('rank: LoRA 4, LoCon (Tucker) 4');
    expect(text).toContain('modules: 294 (te 18, unet 276; UNet groups in 99, mid 18, out 159)');
    expect(text).toContain('trigger words: locon_tuckertrigger');
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });

  it('tells the base model from shapes and keys when metadata is missing, and counts alpha-less modules', () => {
    const peft = inspectLora(join(lyco!, 'lora_peft.safetensors'));
    expect(peft.keyStyles).toEqual(['peft']);
    expect(peft.baseModel.family).toBe('unknown');
    expect(peft.alpha.missing).toBe(210);
    expect(formatLoraInspection(peft)).toContain('alpha: none (210 modules without: scale 1)');
    const lokr = inspectLora(join(lyco!, 'lokr.safetensors'));
    expect(lokr.alpha).toMatchObject({ min: 2, max: 4 });
    const oft = inspectLora(join(lyco!, 'oft.safetensors'));
    expect(oft.families).toEqual({ OFT: 210 });
    expect(oft.alpha.missing).toBe(0);
  });

  it('describes an SDXL LoRA by components', () => {
    const info = inspectLora(sdxl!);
    expect(info.baseModel.family).toBe('SDXL');
    expect(info.modules.byComponent).toEqual({ te1: 18, te2: 18, unet: 257 });
    expect(info.families).toEqual({ LoRA: 255, LoCon: 38 });
  });
});
