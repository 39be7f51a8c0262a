import { InvalidInputError } from '../errors.ts';
import { numel } from '../safetensors/index.ts';
import { normalFillAvx2 } from './box-muller.ts';
import { Mt19937 } from './mt19937.ts';
import { checkSeed } from './seed.ts';

const TWO_POW_MINUS_24 = 2 ** -24;
const TWO_POW_MINUS_53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

/** Element count of a shape given by a caller, refusing what torch would refuse. */
function shapeSize(shape: readonly number[]): number {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InvalidInputError(`noise shape [${shape.join(', ')}] is not valid: each size must be a whole number ≥ 0`);
  }
  return numel(shape);
}

/**
 * PyTorch's CPU generator (`torch.Generator()` after `manual_seed(seed)`): an MT19937 engine seeded with the
 * seed's low 32 bits, and torch's float32 `rand` / `randn` on top of it. Each call continues the stream as
 * torch does, so one generator can also supply a sampler's per-step noise.
 */
export class TorchGenerator {
  readonly seed: bigint;
  readonly #engine: Mt19937;
  /** The second value of the last scalar Box–Muller pair, used by the next scalar draw (as torch caches it). */
  #cachedNormal: number | undefined;

  constructor(seed: bigint) {
    this.seed = checkSeed(seed);
    this.#engine = new Mt19937(Number(BigInt.asUintN(32, seed)));
  }

  /** The engine's next 32-bit output (torch's `random()`). */
  nextUint32(): number {
    return this.#engine.nextUint32();
  }

  /** `uniform_real_distribution<float>(0, 1)`: the low 24 bits of one output, scaled into [0, 1). */
  #uniformFloat = (): number => (this.#engine.nextUint32() & 0xffffff) * TWO_POW_MINUS_24;

  /** `uniform_real_distribution<double>(0, 1)`: the low 53 bits of (first output << 32 | second). */
  #uniformDouble(): number {
    const high = this.#engine.nextUint32() & 0x1fffff;
    const low = this.#engine.nextUint32();
    return (high * TWO_POW_32 + low) * TWO_POW_MINUS_53;
  }

  /**
   * `normal_distribution<double>`: Box–Muller in double precision, returning r·cos θ and caching r·sin θ for
   * the next call. Recent torch takes log1p(−u2), older releases log(1 − u2) (1 − u2 is exact); libm's and
   * V8's functions may also differ in a double's last bit. Rounded to float32, such a difference changes a
   * result only if it sits on a rounding boundary (about one value in 2^29).
   */
  #normalDouble(): number {
    if (this.#cachedNormal !== undefined) {
      const cached = this.#cachedNormal;
      this.#cachedNormal = undefined;
      return cached;
    }
    const u1 = this.#uniformDouble();
    const u2 = this.#uniformDouble();
    const radius = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    // Torch scales by std (1) and adds the mean (0), which turns −0 into +0.
    this.#cachedNormal = radius * Math.sin(theta) + 0;
    return radius * Math.cos(theta) + 0;
  }

  /** `torch.rand(shape, generator=g)` in float32: one engine output per element. */
  rand(shape: readonly number[]): Float32Array {
    const out = new Float32Array(shapeSize(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.#uniformFloat();
    return out;
  }

  /**
   * `torch.randn(shape, generator=g)` in float32, bit for bit as torch's AVX2 CPU build draws it: the
   * vectorised Box–Muller for 16 or more elements, the scalar double-precision one below that.
   */
  randn(shape: readonly number[]): Float32Array {
    const out = new Float32Array(shapeSize(shape));
    if (out.length >= 16) normalFillAvx2(out, this.#uniformFloat);
    else for (let i = 0; i < out.length; i++) out[i] = this.#normalDouble();
    return out;
  }
}
