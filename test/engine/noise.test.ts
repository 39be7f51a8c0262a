import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../engine/errors.ts';
import { MAX_SEED, TorchGenerator, parseSeed, prepareNoise, torchRandn, writeNoiseFile } from '../../engine/noise/index.ts';
import { SafetensorsFile } from '../../engine/safetensors/index.ts';
import { sharedFixture } from '../helpers/fixtures.ts';

const fixtureDir = sharedFixture('torch-randn');

interface Fixture {
  seed: bigint;
  shape: number[];
  noise: Float32Array;
}

function readFixture(name: string): Fixture {
  const file = SafetensorsFile.open(join(fixtureDir!, name));
  try {
    const shape = JSON.parse(file.metadata.shape) as number[];
    expect(file.info('noise').shape).toEqual(shape);
    return { seed: parseSeed(file.metadata.seed), shape, noise: file.readFloat32('noise') };
  } finally {
    file.close();
  }
}

/** Indices whose float32 bit patterns differ (empty when bit-exact; -1 for a length mismatch). */
function bitDifferences(actual: Float32Array, expected: Float32Array): number[] {
  if (actual.length !== expected.length) return [-1];
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const differ: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ.push(i);
  return differ;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe.skipIf(!fixtureDir)('torch.randn conformance (fixtures/torch-randn, PyTorch CPU, AVX2)', () => {
  const names = fixtureDir ? readdirSync(fixtureDir).filter((n) => n.endsWith('.safetensors')) : [];

  it('has fixtures to check', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it.each(names)('%s is reproduced bit for bit', (name) => {
    const { seed, shape, noise } = readFixture(name);
    expect(bitDifferences(torchRandn(seed, shape), noise)).toEqual([]);
  });

  it('continues the scalar stream across calls, carrying the cached second Box–Muller value', () => {
    const { seed, noise } = readFixture('seed0_6.safetensors');
    const halves = new TorchGenerator(seed);
    expect(bitDifferences(concat(halves.randn([3]), halves.randn([3])), noise)).toEqual([]);
    const singles = new TorchGenerator(seed);
    expect(bitDifferences(Float32Array.from(noise, () => singles.randn([1])[0]), noise)).toEqual([]);
  });

  it('continues the vectorised stream: two [1,4,64,64] draws equal one [2,4,64,64] draw', () => {
    const { seed, shape, noise } = readFixture('seed123456789_2x4x64x64.safetensors');
    const generator = new TorchGenerator(seed);
    const sample = [1, ...shape.slice(1)];
    expect(bitDifferences(concat(generator.randn(sample), generator.randn(sample)), noise)).toEqual([]);
  });

  it('keeps seeds above 2^53 exact (a double would round 9007199254740993 and change the noise)', () => {
    const { seed, shape, noise } = readFixture('seed9007199254740993_1x4x8x8.safetensors');
    expect(seed).toBe(9007199254740993n);
    expect(bitDifferences(torchRandn(BigInt(Number(seed)), shape), noise).length).toBeGreaterThan(0);
  });

  it('prepareNoise gives each batch entry the draw named by its batch index', () => {
    const { seed, shape, noise } = readFixture('seed123456789_2x4x64x64.safetensors');
    const half = noise.length / 2;
    const first = noise.subarray(0, half);
    const second = noise.subarray(half);
    expect(bitDifferences(prepareNoise(seed, shape), noise)).toEqual([]);
    expect(bitDifferences(prepareNoise(seed, shape, [0, 1]), noise)).toEqual([]);
    expect(bitDifferences(prepareNoise(seed, shape, [1, 0]), concat(second, first))).toEqual([]);
    expect(bitDifferences(prepareNoise(seed, [3, ...shape.slice(1)], [1, 1, 0]), concat(second, second, first))).toEqual([]);
    expect(bitDifferences(prepareNoise(seed, [1, ...shape.slice(1)], [1]), second)).toEqual([]);
  });

  it('prepareNoise with batch indices differs from one draw when a sample is not a multiple of 16 (tail rule)', () => {
    const { seed, shape, noise } = readFixture('seed42_1x4x13x17.safetensors');
    const batch = [2, ...shape.slice(1)];
    const perSample = prepareNoise(seed, batch, [0, 1]).subarray(0, noise.length);
    expect(bitDifferences(perSample, noise)).toEqual([]);
    expect(bitDifferences(torchRandn(seed, batch).subarray(0, noise.length), noise).length).toBeGreaterThan(0);
  });

  it('writeNoiseFile writes the noise with its seed and shape', () => {
    const { seed, shape, noise } = readFixture('seed9007199254740993_1x4x8x8.safetensors');
    const path = join(mkdtempSync(join(tmpdir(), 'lg-noise-')), 'noise.safetensors');
    writeNoiseFile(path, seed, shape);
    const file = SafetensorsFile.open(path);
    try {
      expect(file.metadata).toEqual({ seed: '9007199254740993', shape: '[1, 4, 8, 8]' });
      expect(file.keys()).toEqual(['noise']);
      expect(file.info('noise')).toMatchObject({ dtype: 'F32', shape });
      expect(bitDifferences(file.readFloat32('noise'), noise)).toEqual([]);
    } finally {
      file.close();
    }
  });
});

// These run without the shared fixtures (a user's clone): published PyTorch values and the MT19937 standard.
describe('TorchGenerator', () => {
  it('runs the standard MT19937: the 10000th output for seed 5489 is 4123659995 (C++ [rand.predef])', () => {
    const generator = new TorchGenerator(5489n);
    let last = 0;
    for (let i = 0; i < 10000; i++) last = generator.nextUint32();
    expect(last).toBe(4123659995);
  });

  // Published `torch.manual_seed(0)` outputs. rand and the scalar randn path: 7 decimals from
  // research/comfyui.md §8.4, hence the 5e-8 tolerance. The vectorised path: torch's own 4-decimal print of
  // `torch.randn(4, 4)`, hence 5e-5 (the 7-decimal randn(16) values in §8.4 come from an emulation of a
  // different kernel variant; they differ from the AVX2 fixture by up to 4.5e-7).
  it('matches published torch.manual_seed(0) values for rand and both randn paths', () => {
    const within = (tolerance: number, actual: Float32Array, expected: number[]) => {
      expect(actual).toHaveLength(expected.length);
      expected.forEach((v, i) => expect(Math.abs(actual[i] - v)).toBeLessThanOrEqual(tolerance));
    };
    within(5e-8, new TorchGenerator(0n).rand([2]), [0.4962566, 0.7682218]);
    within(5e-8, new TorchGenerator(0n).randn([2, 3]), [1.5409961, -0.2934289, -2.1787894, 0.5684313, -1.0845224, -1.3985955]);
    within(5e-5 + 1e-7, new TorchGenerator(0n).randn([4, 4]), [
      -1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.692, -0.316, -2.1152, 0.3223, -1.2633, 0.35, 0.3081, 0.1198,
      1.2377, 1.1168, -0.2473,
    ]);
  });

  it('fills all uniforms of a vectorised draw before transforming them (randn(16) uses the 16 rand values)', () => {
    const u = new TorchGenerator(7n).rand([16]);
    const n = new TorchGenerator(7n).randn([16]);
    const radius = Math.sqrt(-2 * Math.log(1 - u[3]));
    const theta = 2 * Math.PI * u[11];
    expect(n[3]).toBeCloseTo(radius * Math.cos(theta), 5);
    expect(n[11]).toBeCloseTo(radius * Math.sin(theta), 5);
  });

  it('gives +0, never −0, where a uniform is exactly 0 (the kernel adds the mean 0 after scaling)', () => {
    // Seed 1753191's 7th engine output has zero low 24 bits (found by search): u1 = 1, so radius = −0.
    expect(new TorchGenerator(1753191n).rand([16])[6]).toBe(0);
    const noise = new TorchGenerator(1753191n).randn([16]);
    expect(Object.is(noise[6], 0) && Object.is(noise[14], 0)).toBe(true);
  });

  it('seeds from the low 32 bits only, as torch does', () => {
    const low = torchRandn(42n, [20]);
    expect(bitDifferences(torchRandn(42n + (5n << 32n), [20]), low)).toEqual([]);
    expect(bitDifferences(torchRandn(MAX_SEED, [20]), torchRandn(0xffffffffn, [20]))).toEqual([]);
  });

  it('draws nothing for an empty shape and one value for a scalar shape', () => {
    const generator = new TorchGenerator(3n);
    expect(generator.randn([2, 0, 5])).toHaveLength(0);
    expect(bitDifferences(generator.randn([]), new TorchGenerator(3n).randn([1]))).toEqual([]);
  });

  it('refuses bad seeds and shapes with InvalidInputError', () => {
    expect(() => new TorchGenerator(-1n)).toThrow(InvalidInputError);
    expect(() => new TorchGenerator(MAX_SEED + 1n)).toThrow(InvalidInputError);
    expect(() => torchRandn(1n, [2, -1])).toThrow(/\[2, -1\]/);
    expect(() => torchRandn(1n, [1.5])).toThrow(InvalidInputError);
  });

  it('prepareNoise refuses batch indices that do not fit the batch', () => {
    expect(() => prepareNoise(1n, [2, 4, 4, 4], [0])).toThrow(InvalidInputError);
    expect(() => prepareNoise(1n, [2, 4, 4, 4], [0, -1])).toThrow(/batch_index \[0, -1\]/);
    expect(() => prepareNoise(1n, [1, 4, 4, 4], [0.5])).toThrow(InvalidInputError);
  });
});

describe('parseSeed', () => {
  it('accepts the whole unsigned 64-bit range without rounding', () => {
    expect(parseSeed('0')).toBe(0n);
    expect(parseSeed('18446744073709551615')).toBe(MAX_SEED);
    expect(MAX_SEED).toBe(2n ** 64n - 1n);
    expect(parseSeed('9007199254740993')).toBe(9007199254740993n);
    expect(parseSeed(' 42 ')).toBe(42n);
    expect(parseSeed('007')).toBe(7n);
    expect(parseSeed(Number.MAX_SAFE_INTEGER)).toBe(2n ** 53n - 1n);
    expect(parseSeed(MAX_SEED)).toBe(MAX_SEED);
  });

  it.each<[string | number | bigint]>([
    ['18446744073709551616'],
    [2n ** 64n],
    ['-1'],
    [-1],
    [-1n],
    ['1.5'],
    [1.5],
    ['1e3'],
    ['0x10'],
    ['+5'],
    ['abc'],
    [''],
    [Number.NaN],
    [2 ** 53],
  ])('refuses %s, naming the value and the range', (value) => {
    const attempt = () => parseSeed(value);
    expect(attempt).toThrow(InvalidInputError);
    expect(attempt).toThrow(`"${String(value)}"`);
    expect(attempt).toThrow('0 to 18446744073709551615');
  });

  it('tells API clients to send seeds above 2^53 − 1 as strings', () => {
    expect(() => parseSeed(2 ** 60)).toThrow(/as a decimal string/);
  });
});
