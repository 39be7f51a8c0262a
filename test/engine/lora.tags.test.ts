import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileFormatError, InvalidInputError, LoraNotFoundError, LoraSpecError } from '../../engine/errors.ts';
import { appendTriggerWords, extractLoraTags, listLoras, loraPath, resolveLoraName, triggerWords } from '../../engine/lora/index.ts';
import { SafetensorsFile } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

describe('prompt LoRA tags', () => {
  it('takes every tag out of the prompt and parses each', () => {
    const r = extractLoraTags('a castle, <lora:styles/ink:0.8>, at dusk <LORA:detail:te=0:unet=1> <lyco:old:0.5>');
    expect(r.prompt).toBe('a castle, at dusk');
    expect(r.specs.map((s) => s.name)).toEqual(['styles/ink', 'detail', 'old']);
    expect(r.specs[0].strength).toBe(0.8);
    expect(r.specs[1].options).toEqual({ te: 0, unet: 1 });
    expect(r.errors).toEqual([]);
  });

  it('reports a bad tag without losing the others', () => {
    const r = extractLoraTags('<lora:good:0.5> photo <lora:bad:te=abc>, <lora:also_good>');
    expect(r.prompt).toBe('photo');
    expect(r.specs.map((s) => s.name)).toEqual(['good', 'also_good']);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toBeInstanceOf(LoraSpecError);
    expect(r.errors[0].message).toMatch(/"bad:te=abc": "te=abc" is not a number/);
  });

  it('leaves prompts without tags and other angle brackets alone', () => {
    expect(extractLoraTags('(masterpiece:1.2), <hypernet:x:1> cat')).toEqual({ prompt: '(masterpiece:1.2), <hypernet:x:1> cat', specs: [], errors: [] });
  });
});

describe('LoRA name resolution', () => {
  const root = mkdtempSync(join(tmpdir(), 'lg-loras-'));
  mkdirSync(join(root, 'Styles', 'Ink'), { recursive: true });
  mkdirSync(join(root, 'chars'));
  for (const f of ['Detail Tweaker.safetensors', 'Styles/Ink/InkWash.safetensors', 'chars/alice_v2.safetensors', 'chars/bob.safetensors', 'Styles/bob.safetensors', 'old.ckpt', 'notes.txt']) {
    writeFileSync(join(root, f), 'x');
  }
  const outside = mkdtempSync(join(tmpdir(), 'lg-outside-'));
  writeFileSync(join(outside, 'secret.safetensors'), 'x');
  symlinkSync(join(outside, 'secret.safetensors'), join(root, 'linked.safetensors'));

  it('lists safetensors files recursively', () => {
    expect(listLoras(root)).toEqual(['Detail Tweaker.safetensors', 'Styles/Ink/InkWash.safetensors', 'Styles/bob.safetensors', 'chars/alice_v2.safetensors', 'chars/bob.safetensors', 'linked.safetensors']);
  });

  it.each([
    ['Detail Tweaker', 'Detail Tweaker.safetensors'],
    ['detail tweaker.SAFETENSORS', 'Detail Tweaker.safetensors'],
    ['inkwash', 'Styles/Ink/InkWash.safetensors'],
    ['styles/ink/inkwash', 'Styles/Ink/InkWash.safetensors'],
    ['Styles\\Ink\\InkWash.safetensors', 'Styles/Ink/InkWash.safetensors'],
    ['chars/bob', 'chars/bob.safetensors'],
    ['ALICE_V2', 'chars/alice_v2.safetensors'],
  ])('%s → %s', (name, rel) => {
    expect(resolveLoraName(name, root)).toBe(join(root, rel));
    expect(resolveLoraName(join(root, rel), root)).toBe(join(root, rel));
  });

  it('refuses names that leave the folder, ambiguous names and pickles', () => {
    expect(() => resolveLoraName('../x', root)).toThrow(InvalidInputError);
    expect(() => resolveLoraName(join(outside, 'secret.safetensors'), root)).toThrow(/outside the loras folder/);
    expect(() => resolveLoraName('linked', root)).toThrow(/links outside the loras folder/);
    expect(() => resolveLoraName('bob', root)).toThrow(/ambiguous.*Styles\/bob.safetensors, chars\/bob.safetensors/);
    expect(() => resolveLoraName('old', root)).toThrow(FileFormatError);
  });

  it('lists the closest names for an unknown one', () => {
    let error: unknown;
    try {
      resolveLoraName('inkwsh', root);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LoraNotFoundError);
    const e = error as LoraNotFoundError;
    expect(e.code).toBe('not_found');
    expect(e.closest[0]).toBe('Styles/Ink/InkWash');
    expect(e.closest.length).toBeLessThanOrEqual(5);
    expect(e.message).toMatch(/LoRA "inkwsh" is not in .*; closest names: Styles\/Ink\/InkWash/);
    expect(() => resolveLoraName('alice', root)).toThrow(/closest names: chars\/alice_v2/);
  });

  it('takes a path when no folder is given', () => {
    const file = join(root, 'chars', 'bob.safetensors');
    expect(loraPath(file)).toBe(file);
    expect(loraPath(file.replace(/\.safetensors$/, ''))).toBe(file);
    expect(() => loraPath(join(root, 'chars', 'bobb'))).toThrow(/closest names: .*bob/);
    expect(() => loraPath(join(root, 'old.ckpt'))).toThrow(FileFormatError);
  });
});

describe('LoRA trigger words', () => {
  const lora = sharedFixture('lycoris-reference', 'lora.safetensors');

  it.skipIf(!lora)("reads kohya's dataset folder names and the frequent caption tags", () => {
    const file = SafetensorsFile.open(lora!);
    const words = triggerWords(lora!, file.metadata);
    file.close();
    expect(words.words).toEqual(['loratrigger']);
    expect(words.frequentTags).toEqual([
      { tag: 'loratrigger', count: 5 },
      { tag: 'style', count: 3 },
    ]);
  });

  it('merges modelspec and a civitai sidecar, without duplicates', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lg-trig-'));
    const path = join(dir, 'hero.safetensors');
    writeFileSync(
      join(dir, 'hero.json'),
      JSON.stringify({
        modelVersions: [
          { trainedWords: ['wrong version'], files: [{ name: 'hero_v1.safetensors' }] },
          { trainedWords: ['Hero Girl, red cape', 'sks'], files: [{ name: 'hero.safetensors' }] },
        ],
      }),
    );
    const meta = {
      ss_tag_frequency: JSON.stringify({ '5_hero girl': { 'hero girl': 9, cape: 4 }, img: { cape: 1 } }),
      'modelspec.trigger_phrase': 'sks, hero girl',
      'modelspec.tags': 'fantasy',
    };
    const words = triggerWords(path, meta);
    expect(words.folders).toEqual(['hero girl']);
    expect(words.civitai).toEqual(['Hero Girl', 'red cape', 'sks']);
    expect(words.modelspec).toEqual(['sks', 'hero girl', 'fantasy']);
    expect(words.words).toEqual(['hero girl', 'sks', 'fantasy', 'red cape']);
    expect(words.frequentTags[0]).toEqual({ tag: 'hero girl', count: 9 });
    expect(words.frequentTags[1]).toEqual({ tag: 'cape', count: 5 });
    writeFileSync(join(dir, 'hero.json'), JSON.stringify({ trainedWords: ['top level'] }));
    expect(triggerWords(path, {}).words).toEqual(['top level']);
  });

  it('appends only the words a prompt lacks', () => {
    expect(appendTriggerWords('a photo of Hero Girl, ', ['hero girl', 'red cape', 'Red Cape', 'sks'])).toBe('a photo of Hero Girl, red cape, sks');
    expect(appendTriggerWords('', ['sks'])).toBe('sks');
    expect(appendTriggerWords('sks', ['sks'])).toBe('sks');
  });
});
