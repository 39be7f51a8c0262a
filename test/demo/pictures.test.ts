/**
 * Tests that look at pictures: the trained demo model (assets/demo) rendered through the real node graph, with
 * fixed seeds, judged by simple pixel statistics. A broken text encoder, UNet, VAE, sampler or LoRA path shows
 * up here as a picture of the wrong colour, shape or style.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Image8 } from '../../engine/image/index.ts';
import { ensureDefaultModel, modelFolders } from '../../engine/models/embedded.ts';
import type { NodeEnv } from '../../nodes/index.ts';
import { nodeEnv, resolveConfig } from '../../server/config.ts';
import { renderDemo, type DemoRequest } from '../../server/workflow/demo.ts';

const OUTLINED = 'shapes_outlined.safetensors';
const HEART = 'shapes_heart.safetensors';
const STRIPED = 'shapes_striped_locon.safetensors';

let env: NodeEnv;

beforeAll(() => {
  const root = mkdtempSync(join(tmpdir(), 'lg-pictures-'));
  const config = resolveConfig({ models: join(root, 'models'), output: join(root, 'out'), input: join(root, 'in'), temp: join(root, 'temp'), data: join(root, 'data') }, {});
  ensureDefaultModel(modelFolders(config.modelsDir));
  env = nodeEnv(config);
});

const render = async (...requests: DemoRequest[]) => renderDemo(env, requests);

type Pixel = (r: number, g: number, b: number) => boolean;
const isRed: Pixel = (r, g, b) => r > 150 && g < 110 && b < 110;
const isWhite: Pixel = (r, g, b) => r > 200 && g > 200 && b > 200;
const isBlue: Pixel = (r, g, b) => b > 120 && r < 110 && b > g + 40;

/** Fraction of pixels of a kind inside a box (default: the whole picture) and their centroid. */
function measure(im: Image8, kind: Pixel, box = { x0: 0, y0: 0, x1: im.width, y1: im.height }) {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0; x < box.x1; x++) {
      const i = (y * im.width + x) * im.channels;
      if (kind(im.data[i], im.data[i + 1], im.data[i + 2])) {
        n++;
        sx += x;
        sy += y;
      }
    }
  }
  return { fraction: n / ((box.x1 - box.x0) * (box.y1 - box.y0)), cx: sx / n, cy: sy / n };
}

/** The 12x12 pixels around a point: the inside of a large shape. */
const around = (cx: number, cy: number) => ({ x0: Math.round(cx) - 6, y0: Math.round(cy) - 6, x1: Math.round(cx) + 6, y1: Math.round(cy) + 6 });

function meanAbsDifference(a: Image8, b: Image8): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i] - b.data[i]);
  return sum / a.data.length;
}

describe('the demo model makes recognisable pictures', () => {
  it('"a red circle" is a red shape in the middle of a white picture', async () => {
    const [{ image }] = await render({ prompt: 'a red circle', seed: 1 });
    const red = measure(image, isRed);
    expect(red.fraction).toBeGreaterThan(0.15);
    expect(Math.hypot(red.cx - 32, red.cy - 32)).toBeLessThan(10);
    expect(measure(image, isRed, around(red.cx, red.cy)).fraction).toBeGreaterThan(0.9);
    expect(measure(image, isWhite).fraction).toBeGreaterThan(0.4);
  });

  it('colours and backgrounds follow the prompt', async () => {
    const [blue, dark] = await render({ prompt: 'a large blue square', seed: 2 }, { prompt: 'a large red circle, black background', seed: 2 });
    expect(measure(blue.image, isBlue).fraction).toBeGreaterThan(0.15);
    expect(measure(blue.image, isRed).fraction).toBeLessThan(0.01);
    const black = measure(dark.image, (r, g, b) => r < 40 && g < 40 && b < 40);
    expect(black.fraction).toBeGreaterThan(0.4);
    expect(measure(dark.image, isRed).fraction).toBeGreaterThan(0.1);
  });
});

describe('demo LoRAs change pictures the way they should', () => {
  const outlined = (options: string): DemoRequest => ({ prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options }] });

  it('the style LoRA hollows the shape out at strength 1 and changes nothing at 0', async () => {
    const [base, zero, full] = await render({ prompt: 'outlined, a large red circle', seed: 1 }, outlined('0'), outlined('1'));
    // Pixel for pixel (the PNGs differ only in the embedded workflow, which names the LoRA).
    expect(Buffer.from(zero.image.data).equals(Buffer.from(base.image.data))).toBe(true);
    const solid = measure(base.image, isRed);
    expect(measure(base.image, isRed, around(solid.cx, solid.cy)).fraction).toBeGreaterThan(0.9);
    const ring = measure(full.image, isRed);
    // Still a red shape, but its middle is now background.
    expect(ring.fraction).toBeGreaterThan(0.05);
    expect(measure(full.image, isRed, around(ring.cx, ring.cy)).fraction).toBeLessThan(0.3);
  });

  it('block groups matter: the outline lives in the up blocks (out=0 keeps the shape solid, in=0 does not)', async () => {
    const [inZero, outZero, full] = await render(outlined('1:in=0'), outlined('1:out=0'), outlined('1'));
    const centreRed = (im: Image8) => {
      const all = measure(im, isRed);
      return measure(im, isRed, around(all.cx, all.cy)).fraction;
    };
    expect(centreRed(outZero.image)).toBeGreaterThan(0.6);
    expect(centreRed(inZero.image)).toBeLessThan(0.4);
    expect(meanAbsDifference(inZero.image, outZero.image)).toBeGreaterThan(10);
    expect(meanAbsDifference(inZero.image, full.image)).toBeGreaterThan(1);
  });

  it('a step schedule changes the picture measurably', async () => {
    const [late, full, base] = await render(outlined('0@0,0@0.5,1@1'), outlined('1'), { prompt: 'outlined, a large red circle', seed: 1 });
    expect(meanAbsDifference(late.image, full.image)).toBeGreaterThan(5);
    expect(meanAbsDifference(late.image, base.image)).toBeGreaterThan(5);
  });

  it('a two-stage KSamplerAdvanced run follows a step schedule over the whole run, as one KSampler does', async () => {
    const schedule = outlined('0@0,0@0.5,1@1');
    const [plain, plainSplit, one, split] = await render(
      { prompt: 'outlined, a large red circle', seed: 1 },
      { prompt: 'outlined, a large red circle', seed: 1, splitAt: 10 },
      schedule,
      { ...schedule, splitAt: 10 },
    );
    expect(plainSplit.image.data).toEqual(plain.image.data); // splitting alone changes nothing
    expect(meanAbsDifference(one.image, plain.image)).toBeGreaterThan(5);
    expect(split.image.data).toEqual(one.image.data);
  });

  it('the concept LoRA draws a shape the base never saw, and the LoCon one stripes it', async () => {
    const [heartBase, heart, stripedBase, striped] = await render(
      { prompt: 'a large red heart', seed: 1 },
      { prompt: 'a large red heart', seed: 1, loras: [{ name: HEART, options: '1' }] },
      { prompt: 'striped, a large blue square', seed: 1 },
      { prompt: 'striped, a large blue square', seed: 1, loras: [{ name: STRIPED, options: '1' }] },
    );
    expect(meanAbsDifference(heart.image, heartBase.image)).toBeGreaterThan(5);
    expect(measure(heart.image, isRed).fraction).toBeGreaterThan(0.1);
    // Stripes: inside the square, rows alternate between light and dark blue.
    const rowSpread = (im: Image8) => {
      const blue = measure(im, isBlue);
      const rows: number[] = [];
      for (let y = Math.round(blue.cy) - 8; y < Math.round(blue.cy) + 8; y++) {
        let sum = 0;
        for (let x = Math.round(blue.cx) - 6; x < Math.round(blue.cx) + 6; x++) sum += im.data[(y * im.width + x) * im.channels + 2];
        rows.push(sum / 12);
      }
      return Math.max(...rows) - Math.min(...rows);
    };
    expect(rowSpread(striped.image)).toBeGreaterThan(rowSpread(stripedBase.image) + 40);
  });
});
