/**
 * The vectorised normal fill of PyTorch's CPU `randn` for contiguous float32 tensors of 16 or more elements
 * (`normal_fill_AVX2` in aten/src/ATen/native/cpu/DistributionTemplates.h), lane by lane.
 */
import { avx2Log, avx2SinCos, type SinCos } from './avx-mathfun.ts';

const f = Math.fround;
const TWO_PI = f(2 * Math.PI);
const trig: SinCos = { sin: 0, cos: 0 };

/**
 * Box–Muller on one block of 16 uniforms: element j (0–7) pairs with j + 8; the first half becomes
 * radius·cos θ, the second radius·sin θ.
 */
function normalFill16(data: Float32Array, start: number): void {
  for (let j = start; j < start + 8; j++) {
    // A double square root rounded to float32 equals sqrtf: double has more than 2·24 + 2 bits.
    const radius = f(Math.sqrt(f(-2 * avx2Log(f(1 - data[j])))));
    avx2SinCos(f(TWO_PI * data[j + 8]), trig);
    // The kernel ends with an FMA by std (1) plus mean (0): exact, except that it turns −0 into +0.
    data[j] = f(radius * trig.cos) + 0;
    data[j + 8] = f(radius * trig.sin) + 0;
  }
}

/**
 * Fills `data` (length ≥ 16) with standard normals: first every element gets a uniform from `nextUniform`
 * in memory order, then each whole 16-block is transformed; when the length is not a multiple of 16, 16
 * fresh uniforms overwrite the last 16 slots and that window is transformed once more.
 */
export function normalFillAvx2(data: Float32Array, nextUniform: () => number): void {
  const n = data.length;
  for (let i = 0; i < n; i++) data[i] = nextUniform();
  for (let i = 0; i + 16 <= n; i += 16) normalFill16(data, i);
  if (n % 16 !== 0) {
    for (let i = n - 16; i < n; i++) data[i] = nextUniform();
    normalFill16(data, n - 16);
  }
}
