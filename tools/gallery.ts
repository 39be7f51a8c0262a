/**
 * Renders the README gallery on the embedded demo model: base prompts, each demo LoRA, a strength sweep, block
 * groups and a step schedule. Images go to docs/gallery/ (upscaled 2x, nearest neighbour, so the 64x64
 * pictures are visible) and a markdown table is printed for the README.
 *
 *   npx tsx tools/gallery.ts
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ensureDefaultModel, modelFolders } from '../engine/models/embedded.ts';
import { nodeEnv, REPO_ROOT, resolveConfig } from '../server/config.ts';
import { renderDemo, type DemoRequest } from '../server/workflow/demo.ts';

interface Cell {
  readonly slug: string;
  readonly caption: string;
  readonly request: DemoRequest;
}

const OUTLINED = 'shapes_outlined.safetensors';
const HEART = 'shapes_heart.safetensors';
const STRIPED = 'shapes_striped_locon.safetensors';

const rows: { title: string; cells: Cell[] }[] = [
  {
    title: 'Base model',
    cells: [
      { slug: 'base-red-circle', caption: 'a red circle', request: { prompt: 'a red circle', seed: 1 } },
      { slug: 'base-blue-square', caption: 'a small blue square on the left, black background', request: { prompt: 'a small blue square on the left, black background', seed: 2 } },
      { slug: 'base-yellow-star', caption: 'a large yellow star at the top, gray background', request: { prompt: 'a large yellow star at the top, gray background', seed: 3 } },
      { slug: 'base-green-triangle', caption: 'a green triangle on the right', request: { prompt: 'a green triangle on the right', seed: 4 } },
    ],
  },
  {
    title: 'Demo LoRAs (strength 1)',
    cells: [
      { slug: 'lora-outlined', caption: '`outlined, a large red circle` + shapes_outlined', request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: '1' }] } },
      { slug: 'lora-heart', caption: '`a large red heart` + shapes_heart', request: { prompt: 'a large red heart', seed: 1, loras: [{ name: HEART, options: '1' }] } },
      { slug: 'lora-striped', caption: '`striped, a large blue square` + shapes_striped_locon', request: { prompt: 'striped, a large blue square', seed: 1, loras: [{ name: STRIPED, options: '1' }] } },
      { slug: 'lora-heart-outlined', caption: '`outlined, a large purple heart` + heart + outlined', request: { prompt: 'outlined, a large purple heart', seed: 1, loras: [{ name: HEART, options: '1' }, { name: OUTLINED, options: '1' }] } },
    ],
  },
  {
    title: 'Strength sweep: `outlined, a large red circle`',
    cells: [0, 0.25, 0.5, 0.75, 1].map((s) => ({
      slug: `sweep-outlined-${s}`,
      caption: `strength ${s}`,
      request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: String(s) }] },
    })),
  },
  {
    title: 'Block groups and a step schedule: `outlined, a large red circle`',
    cells: [
      { slug: 'blocks-in0', caption: '`1:in=0`', request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: '1:in=0' }] } },
      { slug: 'blocks-out0', caption: '`1:out=0`', request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: '1:out=0' }] } },
      { slug: 'schedule-late', caption: '`0@0,0@0.5,1@1` (late)', request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: '0@0,0@0.5,1@1' }] } },
      { slug: 'schedule-early', caption: '`1@0,1@0.5,0@1` (early)', request: { prompt: 'outlined, a large red circle', seed: 1, loras: [{ name: OUTLINED, options: '1@0,1@0.5,0@1' }] } },
    ],
  },
];

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'loragraph-gallery-'));
  const config = resolveConfig({ output: join(scratch, 'output'), temp: join(scratch, 'temp'), input: join(scratch, 'input'), data: join(scratch, 'data') });
  ensureDefaultModel(modelFolders(config.modelsDir));
  const env = nodeEnv(config);
  const out = join(REPO_ROOT, 'docs', 'gallery');
  mkdirSync(out, { recursive: true });
  const lines: string[] = [];
  for (const row of rows) {
    const images = await renderDemo(env, row.cells.map((c) => c.request));
    for (const [i, cell] of row.cells.entries()) {
      const { width, height } = images[i].image;
      const big = await sharp(images[i].png).resize(width * 2, height * 2, { kernel: 'nearest' }).png().toBuffer();
      writeFileSync(join(out, `${cell.slug}.png`), big);
    }
    lines.push(`**${row.title}**`, '', `| ${row.cells.map((c) => c.caption).join(' | ')} |`, `|${row.cells.map(() => ' --- ').join('|')}|`);
    lines.push(`| ${row.cells.map((c) => `![${c.slug}](docs/gallery/${c.slug}.png)`).join(' | ')} |`, '');
  }
  console.log(lines.join('\n'));
}

await main();
