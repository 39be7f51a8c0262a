import { describe, expect, it } from 'vitest';
import { readTensors, runModuleCheck, type ModuleName, type NamedTensor } from '../../engine/models/module-check.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

/** max |a − b| / max |b|: the fixtures README's "relative to the output's scale". */
function relativeError(got: NamedTensor, want: NamedTensor): number {
  expect(got.shape).toEqual(want.shape);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.data.length; i++) {
    err = Math.max(err, Math.abs(Number(got.data[i]) - Number(want.data[i])));
    scale = Math.max(scale, Math.abs(Number(want.data[i])));
  }
  return err / scale;
}

const TOLERANCE = 1e-4;

const sd1Ref = sharedFixture('tiny-sd-reference', 'tiny-sd1.reference.safetensors');
const sdxlRef = sharedFixture('tiny-sd-reference', 'tiny-sdxl.reference.safetensors');
const sdxlTextRef = sharedFixture('tiny-sdxl-full', 'tiny-sdxl.text.reference.safetensors');

const cases: { label: string; reference: string | undefined; checkpoints: string[]; module: ModuleName; outputs: string[] }[] = [
  { label: 'SD1 CLIP', reference: sd1Ref, checkpoints: ['tiny-sd-reference/tiny-sd1.safetensors', 'tiny-sd-reference/tiny-sd1', 'tiny-sd-reference/tiny-sd1/text_encoder'], module: 'clip', outputs: ['clip.last_hidden_state', 'clip.penultimate_final_ln', 'clip.penultimate_hidden_state', 'clip.pooled'] },
  { label: 'SD1 UNet', reference: sd1Ref, checkpoints: ['tiny-sd-reference/tiny-sd1.safetensors', 'tiny-sd-reference/tiny-sd1', 'tiny-sd-reference/tiny-sd1/unet'], module: 'unet', outputs: ['unet.out'] },
  { label: 'SD1 VAE decoder', reference: sd1Ref, checkpoints: ['tiny-sd-reference/tiny-sd1.safetensors', 'tiny-sd-reference/tiny-sd1', 'tiny-sd-reference/tiny-sd1/vae'], module: 'vae-decode', outputs: ['vae.decoded'] },
  { label: 'SD1 VAE encoder', reference: sd1Ref, checkpoints: ['tiny-sd-reference/tiny-sd1.safetensors', 'tiny-sd-reference/tiny-sd1/vae/diffusion_pytorch_model.safetensors'], module: 'vae-encode', outputs: ['vae.encoded_mean', 'vae.encoded_logvar'] },
  { label: 'SDXL UNet', reference: sdxlRef, checkpoints: ['tiny-sd-reference/tiny-sdxl-unet.ldm.safetensors', 'tiny-sd-reference/tiny-sdxl', 'tiny-sdxl-full/tiny-sdxl.safetensors'], module: 'unet', outputs: ['unet.out'] },
  { label: 'SDXL text encoders', reference: sdxlTextRef, checkpoints: ['tiny-sdxl-full/tiny-sdxl.safetensors'], module: 'clip', outputs: ['clipxl.context', 'clipxl.pooled'] },
];

describe('module graphs reproduce diffusers (shared reference fixtures)', () => {
  for (const c of cases) {
    for (const checkpoint of c.checkpoints) {
      const path = sharedFixture(...checkpoint.split('/'));
      it.skipIf(!c.reference || !path)(`${c.label} from ${checkpoint}`, async () => {
        const reference = readTensors(c.reference!);
        const outputs = await runModuleCheck(path!, c.module, reference);
        for (const name of c.outputs) {
          const error = relativeError(outputs.get(name)!, reference.get(name)!);
          expect(error, name).toBeLessThan(TOLERANCE);
        }
      });
    }
  }
});
