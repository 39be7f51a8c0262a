import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileFormatError } from '../../engine/errors.ts';
import { SafetensorsFile, writeSafetensors, f32Entry } from '../../engine/safetensors/index.ts';
import { fromFloat32, toFloat32, floatToHalfBits, type DType } from '../../engine/tensor/dtype.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'lg-st-'));

function rawFile(name: string, header: unknown, data = new Uint8Array(0), lengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([prefix, json, data]));
  return path;
}

describe('safetensors', () => {
  it('round-trips every dtype, shapes and metadata', () => {
    const values = new Float32Array([0, 1, -2, 3.5, 65504, -0.25]);
    const dtypes: DType[] = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];
    const path = join(dir, 'all.safetensors');
    const ints = new Float32Array([0, 1, -2, 3, 100, -5]);
    const bytes = new Float32Array([0, 1, 2, 3, 4, 5]);
    const sample = (dtype: DType) =>
      dtype === 'U8' || dtype === 'BOOL' ? bytes : dtype.startsWith('I') ? ints : values;
    const entries = dtypes.map((dtype) => ({ name: `t.${dtype}`, dtype, shape: [2, 3], data: fromFloat32(sample(dtype), dtype) }));
    writeSafetensors(path, entries, { format: 'pt', note: 'ünïcode' });
    const file = SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(file.keys()).toEqual(dtypes.map((d) => `t.${d}`));
    for (const dtype of dtypes) {
      expect(file.info(`t.${dtype}`).shape).toEqual([2, 3]);
      const back = [...file.readFloat32(`t.${dtype}`)];
      if (dtype === 'BF16') expect(back).toEqual([0, 1, -2, 3.5, 65536, -0.25]);
      else expect(back).toEqual([...sample(dtype)]);
    }
    file.close();
  });

  it('reads a tensor by name without reading the others', () => {
    const path = join(dir, 'lazy.safetensors');
    writeSafetensors(path, [f32Entry('a', [2], new Float32Array([1, 2])), f32Entry('b', [1], new Float32Array([7]))]);
    const file = SafetensorsFile.open(path);
    expect([...file.readFloat32('b')]).toEqual([7]);
    expect([...toFloat32(file.readBytes('a', 4, 4), 'F32')]).toEqual([2]);
    expect(() => file.info('zzz')).toThrow(/no tensor named "zzz"/);
    file.close();
  });

  it('rounds float32 to half to nearest even', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // overflows to inf
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalfBits(2 ** -24)).toBe(1); // smallest subnormal
    expect(floatToHalfBits(-0)).toBe(0x8000);
  });

  const hostile: [string, () => string, RegExp][] = [
    ['too short', () => { const p = join(dir, 'short'); writeFileSync(p, Buffer.from([1, 2])); return p; }, /too short/],
    ['giant header length', () => rawFile('giant', '{}', undefined, 1n << 40n), /limit/],
    ['header past end of file', () => rawFile('past', '{}', undefined, 1000n), /only \d+ bytes/],
    ['not JSON', () => rawFile('notjson', '{"a": '), /not valid UTF-8 JSON/],
    ['JSON array', () => rawFile('array', '[1,2]'), /not a JSON object/],
    ['unknown dtype', () => rawFile('dtype', { a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype "F8_E4M3"/],
    ['negative shape', () => rawFile('neg', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /invalid shape/],
    ['offsets out of range', () => rawFile('range', { a: { dtype: 'F32', shape: [1e9], data_offsets: [0, 4e9] } }, new Uint8Array(4)), /data section, which has only 4 bytes/],
    ['wrong byte length', () => rawFile('len', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8)), /needs 8/],
    ['overlap', () => rawFile('overlap', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap/],
    ['bad metadata', () => rawFile('meta', { __metadata__: { a: 1 } }), /not a string/],
    ['pickle', () => { const p = join(dir, 'model.ckpt'); writeFileSync(p, Buffer.from([0x80, 2, 0x7d, 0x71, 0, 0, 0, 0, 0])); return p; }, /pickle.*arbitrary code/],
    ['zip pickle', () => { const p = join(dir, 'model.pt'); writeFileSync(p, Buffer.from('PK\x03\x04rest-of-zip')); return p; }, /pickle/],
  ];
  for (const [label, make, message] of hostile) {
    it(`refuses a file with ${label} with a typed error naming the file`, () => {
      const path = make();
      let error: unknown;
      try {
        SafetensorsFile.open(path);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FileFormatError);
      expect((error as FileFormatError).file).toBe(path);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message.startsWith(path)).toBe(true);
    });
  }

  const fixture = sharedFixture('tiny-sd-reference', 'tiny-sd1.safetensors');
  it.skipIf(!fixture)('opens a real checkpoint written by the safetensors library', () => {
    const file = SafetensorsFile.open(fixture!);
    expect(file.keys().length).toBe(974);
    const w = file.readFloat32('model.diffusion_model.input_blocks.0.0.weight');
    expect(w.length).toBe(32 * 4 * 3 * 3);
    file.close();
  });
});
