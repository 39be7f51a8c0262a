import { describe, expect, it } from 'vitest';
import { LoraSpecError } from '../../engine/errors.ts';
import {
  checkBlocks,
  formatLoraSpec,
  parseLoraSpec,
  parseStrength,
  resolveStrengths,
  strengthAt,
  strengthAtStep,
  unetBlockNames,
} from '../../engine/lora/index.ts';

/** Resolved strengths at step 0, schedules shown as text. */
function chain(text: string): Record<string, number | string> {
  const s = resolveStrengths(parseLoraSpec(text));
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? v : JSON.stringify(v.schedule)]));
}

describe('LoRA spec defaulting chain', () => {
  it.each([
    // no strength: everything 1
    ['x', { te: 1, te1: 1, te2: 1, unet: 1, in: 1, mid: 1, out: 1 }],
    // positional strength sets every part
    ['x:0.8', { te: 0.8, te1: 0.8, te2: 0.8, unet: 0.8, in: 0.8, mid: 0.8, out: 0.8 }],
    // in/mid/out default to unet, which defaults to the positional strength
    ['x:0.8:in=0', { te: 0.8, unet: 0.8, in: 0, mid: 0.8, out: 0.8 }],
    ['x:0.6:in=0:mid=1:out=0.5', { te: 0.6, unet: 0.6, in: 0, mid: 1, out: 0.5 }],
    // te without a positional strength: unet follows te (SD.Next)
    ['x:te=0.5', { te: 0.5, unet: 0.5, in: 0.5, mid: 0.5, out: 0.5 }],
    // a positional strength is not ignored when te is given (SD.Next would give unet 1 here)
    ['x:0.5:te=1', { te: 1, unet: 0.5, in: 0.5, mid: 0.5, out: 0.5 }],
    // te=0 with a strength keeps the UNet (SD.Next drops the LoRA)
    ['x:1:te=0', { te: 0, te1: 0, te2: 0, unet: 1, in: 1, mid: 1, out: 1 }],
    ['x:te=0:unet=1', { te: 0, unet: 1, in: 1, mid: 1, out: 1 }],
    ['x:te=0.25:unet=1.5', { te: 0.25, unet: 1.5, in: 1.5, mid: 1.5, out: 1.5 }],
    ['x:1:te=0.25:unet=1.5', { te: 0.25, unet: 1.5, in: 1.5, mid: 1.5, out: 1.5 }],
    // unet with in overriding one group
    ['x:unet=2:out=-1', { te: 1, unet: 2, in: 2, mid: 2, out: -1 }],
    // SDXL encoders default to te, and can be set apart
    ['x:0.7:te2=0', { te: 0.7, te1: 0.7, te2: 0, unet: 0.7 }],
    ['x:te=0.3:te1=1', { te: 0.3, te1: 1, te2: 0.3, unet: 0.3 }],
    // all zero is kept (never silently skipped)
    ['x:0', { te: 0, unet: 0, in: 0, mid: 0, out: 0 }],
    // keys are case-insensitive, spaces around parts ignored
    ['x : 0.5 : TE=2', { te: 2, unet: 0.5 }],
  ])('%s', (text, want) => {
    expect(chain(text)).toMatchObject(want);
  });

  it('parses names with paths, Windows drive letters and the canonical form back', () => {
    expect(parseLoraSpec('styles/Ink Wash:0.5').name).toBe('styles/Ink Wash');
    expect(parseLoraSpec('C:\\loras\\x.safetensors:0.7')).toMatchObject({ name: 'C:\\loras\\x.safetensors', strength: 0.7 });
    expect(formatLoraSpec(parseLoraSpec('x:0.8:out=0.1@0,1@1:te=0:blocks=1,0'))).toBe('x:0.8:te=0:out=0.1@0,1@1:blocks=1,0');
  });

  it.each([
    ['', ''],
    ['x:abc', 'abc'],
    ['x:te=abc', 'te=abc'],
    ['x:0.5:0.7', '0.7'],
    ['x:lbw=1,0,1', 'lbw=1,0,1'],
    ['x:te=1:te=2', 'te=2'],
    ['x:a=b=c', 'a=b=c'],
    ['x::1', ''],
    ['x:te=0.1@x', 'te=0.1@x'],
    ['x:te=1,0.5,0', 'te=1,0.5,0'],
    ['x:blocks=1,a,0', 'blocks=1,a,0'],
    ['x:te=Infinity', 'te=Infinity'],
    ['x:unet=0x10', 'unet=0x10'],
  ])('rejects %j naming the bad part', (text, part) => {
    let error: unknown;
    try {
      parseLoraSpec(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LoraSpecError);
    expect((error as LoraSpecError).code).toBe('bad_lora_spec');
    expect((error as LoraSpecError).part.trim()).toBe(part);
    expect((error as Error).message).toContain(`"${text}"`);
  });

  it('explains a list of numbers given as a strength', () => {
    expect(() => parseLoraSpec('x:1,0,1,1')).toThrow(/per-block values go in blocks=/);
    expect(() => parseLoraSpec('x:te=0.5@')).toThrow(/bad schedule item "0.5@"/);
  });
});

describe('LoRA step schedules', () => {
  it('parses weight@position items in any order, with ~ and ; too', () => {
    expect(parseStrength('0.6@6,0.1@1')).toEqual({ schedule: [{ at: 1, weight: 0.1 }, { at: 6, weight: 0.6 }] });
    expect(parseStrength('0.2~0;1~0.5')).toEqual({ schedule: [{ at: 0, weight: 0.2 }, { at: 0.5, weight: 1 }] });
    // an item without a position sits at the end of the run
    expect(parseStrength('0@0,1')).toEqual({ schedule: [{ at: 0, weight: 0 }, { at: 1, weight: 1 }] });
    expect(parseStrength(' -0.5 ')).toBe(-0.5);
  });

  it('interpolates step numbers (1-based) piecewise-linearly and clamps outside', () => {
    const s = parseStrength('0.1@1,0.6@6');
    const at = (step: number) => strengthAtStep(s, step, 20);
    expect(at(0)).toBeCloseTo(0.1, 12); // step 1
    expect(at(2)).toBeCloseTo(0.1 + (0.5 * 2) / 5, 12); // step 3
    expect(at(5)).toBeCloseTo(0.6, 12); // step 6
    expect(at(19)).toBeCloseTo(0.6, 12);
  });

  it('reads positions ≤ 1 as fractions of the run (first step 0, last step 1)', () => {
    const s = parseStrength('0.2@0,1@0.5');
    expect(strengthAtStep(s, 0, 11)).toBeCloseTo(0.2, 12);
    expect(strengthAtStep(s, 2, 11)).toBeCloseTo(0.2 + 0.8 * (0.2 / 0.5), 12);
    expect(strengthAtStep(s, 5, 11)).toBeCloseTo(1, 12);
    expect(strengthAtStep(s, 10, 11)).toBeCloseTo(1, 12);
    expect(strengthAtStep(s, 0, 1)).toBeCloseTo(0.2, 12);
    // equal positions make a jump, taking the later weight from that position on
    const jump = parseStrength('0.2@0.2,1@0.2');
    expect(strengthAtStep(jump, 1, 11)).toBe(0.2);
    expect(strengthAtStep(jump, 2, 11)).toBe(1);
  });
});

describe('LoRA strengths per weight', () => {
  const sd1 = unetBlockNames({ levels: 4, numResBlocks: 2, attention: [true, true, true, false] });
  const sdxl = unetBlockNames({ levels: 3, numResBlocks: 2, attention: [false, true, true] });
  const block = (name: string) => sd1.indexOf(name);

  it('names the UNet blocks in kohya order', () => {
    expect(sd1).toHaveLength(25);
    expect(sd1.slice(0, 2)).toEqual(['IN00', 'IN01']);
    expect(sd1[12]).toBe('M00');
    expect(sd1[24]).toBe('OUT11');
    expect(sdxl).toHaveLength(19);
    expect(sdxl[9]).toBe('M00');
  });

  it('picks the component, group and step value', () => {
    const spec = parseLoraSpec('x:0.5:te1=0.1:te2=0.2:in=0.3:mid=0@0,1@1:out=0.7');
    const at = (target: Parameters<typeof strengthAt>[1], step = 0, total = 1) => strengthAt(spec, target, step, total);
    expect(at({ component: 'te' })).toBe(0.5);
    expect(at({ component: 'te1' })).toBe(0.1);
    expect(at({ component: 'te2' })).toBe(0.2);
    expect(at({ component: 'unet', group: 'in', block: 4, blockCount: 25 })).toBe(0.3);
    expect(at({ component: 'unet', group: 'mid', block: 12, blockCount: 25 }, 0, 5)).toBe(0);
    expect(at({ component: 'unet', group: 'mid', block: 12, blockCount: 25 }, 2, 5)).toBeCloseTo(0.5, 12);
    expect(at({ component: 'unet', group: 'out', block: 20, blockCount: 25 })).toBe(0.7);
  });

  it('multiplies per-block factors, with an optional leading text-encoder value', () => {
    const factors = sd1.map((_, i) => i / 10);
    const spec = parseLoraSpec(`x:0.5:blocks=${factors.join(',')}`);
    checkBlocks(spec, sd1);
    expect(strengthAt(spec, { component: 'unet', group: 'in', block: block('IN04'), blockCount: 25 }, 0, 1)).toBeCloseTo(0.5 * 0.4, 12);
    expect(strengthAt(spec, { component: 'unet', group: 'out', block: block('OUT03'), blockCount: 25 }, 0, 1)).toBeCloseTo(0.5 * 1.6, 12);
    expect(strengthAt(spec, { component: 'te', blockCount: 25 }, 0, 1)).toBe(0.5);
    const withBase = parseLoraSpec(`x:0.5:blocks=0.25 ${factors.join(' ')}`);
    checkBlocks(withBase, sd1);
    expect(strengthAt(withBase, { component: 'te', blockCount: 25 }, 0, 1)).toBeCloseTo(0.125, 12);
    expect(strengthAt(withBase, { component: 'unet', group: 'mid', block: block('M00'), blockCount: 25 }, 0, 1)).toBeCloseTo(0.5 * 1.2, 12);
  });

  it('rejects a block list of the wrong length, saying what fits', () => {
    const spec = parseLoraSpec(`x:blocks=${Array(17).fill(1).join(',')}`);
    expect(() => checkBlocks(spec, sd1, 'this SD1.x UNet')).toThrow(LoraSpecError);
    expect(() => checkBlocks(spec, sd1, 'this SD1.x UNet')).toThrow(/has 17 values; this SD1.x UNet has 25 blocks \(IN00–IN11, M00, OUT00–OUT11\): give 25 values, or 26/);
    expect(() => checkBlocks(parseLoraSpec(`x:blocks=${Array(25).fill(1).join(',')}`), sdxl)).toThrow(/has 19 blocks/);
    expect(() => strengthAt(spec, { component: 'unet', group: 'in', block: 1, blockCount: 25 }, 0, 1)).toThrow(LoraSpecError);
  });
});
