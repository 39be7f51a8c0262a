import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { InvalidInputError } from '../../engine/errors.ts';
import { comfyPngText, decodeImage, encodePng, formatA1111Parameters, imageTensorToImages, imageToComfyTensors } from '../../engine/image/index.ts';
import { stringifyJson } from '../../engine/json.ts';
import { folderPath, listFiles, resolveInFolder, splitAnnotation, type NodeEnv } from '../env.ts';
import { describeGeneration } from '../metadata.ts';
import { defineNode, type NodeContext } from '../types.ts';
import type { ImageValue } from '../values.ts';

function imagePath(env: NodeEnv, name: string): string {
  const { folder, file } = splitAnnotation(name, 'input');
  return resolveInFolder(env, folder, file);
}

export const LoadImage = defineNode({
  name: 'LoadImage',
  displayName: 'Load Image',
  category: 'image',
  description: 'Loads an image from the input folder; the mask is 1 − alpha.',
  inputs: { image: { kind: 'COMBO', options: (env) => listFiles(env, 'input'), imageUpload: true, allowUnlisted: true } },
  outputs: [
    { name: 'IMAGE', type: 'IMAGE' },
    { name: 'MASK', type: 'MASK' },
  ],
  validate(inputs, env) {
    try {
      imagePath(env, String(inputs.image));
      return undefined;
    } catch (err) {
      return `Invalid image file: ${String(inputs.image)} (${(err as Error).message})`;
    }
  },
  fingerprint(inputs, env) {
    return createHash('sha256').update(readFileSync(imagePath(env, String(inputs.image)))).digest('hex');
  },
  async execute(inputs, ctx) {
    const path = imagePath(ctx.env, String(inputs.image));
    const { image, mask } = imageToComfyTensors(await decodeImage(readFileSync(path), path));
    return { outputs: [image, mask] };
  },
});

/** ComfyUI's filename_prefix placeholders resolved by the backend. */
function expandPrefix(prefix: string, width: number, height: number): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  return prefix
    .replaceAll('%width%', String(width))
    .replaceAll('%height%', String(height))
    .replaceAll('%year%', String(now.getFullYear()))
    .replaceAll('%month%', pad(now.getMonth() + 1))
    .replaceAll('%day%', pad(now.getDate()))
    .replaceAll('%hour%', pad(now.getHours()))
    .replaceAll('%minute%', pad(now.getMinutes()))
    .replaceAll('%second%', pad(now.getSeconds()));
}

/** Next free `<prefix>_<counter>_.png` in the folder, counting from 1 + the highest counter already used. */
function nextCounter(dir: string, base: string): number {
  if (!existsSync(dir)) return 1;
  let max = 0;
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(\\d{5,})_\\.png$`);
  for (const f of readdirSync(dir)) {
    const m = pattern.exec(f);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

async function saveImages(images: ImageValue, prefix: string, ctx: NodeContext, folder: 'output' | 'temp') {
  const root = resolve(folderPath(ctx.env, folder));
  const [, height, width] = images.shape;
  const target = resolve(root, expandPrefix(prefix, width, height));
  if (target !== root && !target.startsWith(root + sep)) throw new InvalidInputError(`filename_prefix "${prefix}" points outside the ${folder} folder`);
  const dir = dirname(target);
  const base = target.slice(dir.length + 1);
  mkdirSync(dir, { recursive: true });
  const generation = describeGeneration(ctx.prompt, ctx.nodeId);
  const workflow = ctx.extraPngInfo.workflow;
  const text = comfyPngText({
    prompt: ctx.promptText,
    workflow: workflow === undefined ? undefined : stringifyJson(workflow),
    parameters: generation ? formatA1111Parameters(generation) : undefined,
  });
  const saved: { filename: string; subfolder: string; type: string }[] = [];
  let counter = nextCounter(dir, base);
  for (const image of imageTensorToImages(images)) {
    const filename = `${base}_${String(counter++).padStart(5, '0')}_.png`;
    writeFileSync(join(dir, filename), await encodePng(image, text, { compressionLevel: folder === 'temp' ? 1 : 4 }));
    saved.push({ filename, subfolder: relative(root, dir).split(sep).join('/'), type: folder });
  }
  return saved;
}

export const SaveImage = defineNode({
  name: 'SaveImage',
  displayName: 'Save Image',
  category: 'image',
  description: 'Saves images as PNG in the output folder, with the workflow embedded (ComfyUI prompt/workflow chunks and A1111 parameters).',
  inputs: {
    images: { kind: 'SOCKET', type: 'IMAGE' },
    filename_prefix: { kind: 'STRING', default: 'LoraGraph', tooltip: 'May contain subfolders and %width% %height% %year% … placeholders.' },
  },
  outputs: [],
  outputNode: true,
  async execute(inputs, ctx) {
    const images = await saveImages(inputs.images as ImageValue, inputs.filename_prefix as string, ctx, 'output');
    return { outputs: [], ui: { images } };
  },
});

export const PreviewImage = defineNode({
  name: 'PreviewImage',
  displayName: 'Preview Image',
  category: 'image',
  description: 'Shows images without keeping them (written to the temp folder).',
  inputs: { images: { kind: 'SOCKET', type: 'IMAGE' } },
  outputs: [],
  outputNode: true,
  async execute(inputs, ctx) {
    const suffix = Math.random().toString(36).slice(2, 7);
    const images = await saveImages(inputs.images as ImageValue, `LoraGraph_temp_${suffix}`, ctx, 'temp');
    return { outputs: [], ui: { images } };
  },
});
