/**
 * GET /view (images from the output, input and temp folders, optionally re-encoded as a preview or reduced to
 * a channel) and POST /upload/image (into those folders, reusing an identical file, else renaming
 * `name (1).png`). Every path stays inside its folder, symlinks included.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import type { Response } from 'express';
import sharp from 'sharp';
import { isInside, realPathInside, splitAnnotation } from '../../../nodes/index.ts';
import type { AppConfig } from '../../config.ts';
import { multipartBoundary, parseMultipart } from '../multipart.ts';
import { sendJson } from '../json.ts';
import { doc, type Route, type ServerContext } from '../route.ts';

type FolderType = 'input' | 'output' | 'temp';
const FOLDER_TYPES: readonly string[] = ['input', 'output', 'temp'];
const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

function folderOf(config: AppConfig, type: FolderType): string {
  return resolve(type === 'input' ? config.inputDir : type === 'output' ? config.outputDir : config.tempDir);
}

/** A plain-text error with a status, as ComfyUI answers these routes. */
function fail(res: Response, status: number, message: string): void {
  res.status(status).type('text/plain').send(message);
}

/** `preview=webp;90` or `jpeg;80`: format and quality. */
function previewFormat(value: string): { format: 'webp' | 'jpeg'; quality: number } | undefined {
  const [format, q] = value.split(';');
  if (format !== 'webp' && format !== 'jpeg') return undefined;
  const quality = q === undefined ? 90 : Number(q);
  return Number.isInteger(quality) && quality >= 1 && quality <= 100 ? { format, quality } : undefined;
}

async function view(ctx: ServerContext, query: Record<string, unknown>, res: Response): Promise<void> {
  const str = (k: string, d = '') => (typeof query[k] === 'string' ? (query[k] as string) : d);
  if (!str('filename')) return fail(res, 400, 'filename is required');
  const { file: name, folder: type } = splitAnnotation(str('filename'), str('type', 'output'));
  if (!FOLDER_TYPES.includes(type)) return fail(res, 400, `type must be input, output or temp, not "${type}"`);
  if (name.startsWith('/') || name.split(/[\\/]/).includes('..') || name.includes('\0')) return fail(res, 400, 'filename must be a plain name inside the folder');
  const subfolder = str('subfolder');
  if (subfolder.includes('\0')) return fail(res, 400, 'bad subfolder');
  const root = folderOf(ctx.config, type as FolderType);
  const dir = resolve(root, subfolder);
  const path = resolve(dir, name);
  if (!isInside(dir, root) || !isInside(path, root)) return fail(res, 403, 'the path leaves the folder');
  if (!existsSync(path) || !statSync(path).isFile()) return fail(res, 404, 'not found');
  if (!realPathInside(path, root)) return fail(res, 403, 'the path links outside the folder');

  const channel = str('channel', 'rgba');
  const preview = str('preview') ? previewFormat(str('preview')) : undefined;
  if (str('preview') && !preview) return fail(res, 400, 'preview must look like webp;90 or jpeg;80');
  if (!['rgba', 'rgb', 'a'].includes(channel)) return fail(res, 400, 'channel must be rgba, rgb or a');
  const contentType = IMAGE_TYPES[extname(name).toLowerCase()];
  res.setHeader('Content-Disposition', `filename="${name.split('/').pop()!.replace(/["\\\r\n]/g, '_')}"`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (!preview && channel === 'rgba') {
    // Anything that is not a known image type is sent as bytes, never as HTML or script.
    res.type(contentType ?? 'application/octet-stream').send(readFileSync(path));
    return;
  }
  if (!contentType) return fail(res, 400, 'only images can be previewed or split into channels');
  let image = sharp(readFileSync(path));
  if (channel === 'rgb') image = image.removeAlpha();
  if (channel === 'a') {
    const { data, info } = await image.ensureAlpha().extractChannel(3).raw().toBuffer({ resolveWithObject: true });
    const rgba = Buffer.alloc(info.width * info.height * 4);
    for (let i = 0; i < data.length; i++) rgba[i * 4 + 3] = data[i];
    image = sharp(rgba, { raw: { width: info.width, height: info.height, channels: 4 } });
  }
  // ComfyUI forces webp for an alpha preview: JPEG has no alpha.
  const format = preview && channel === 'a' ? 'webp' : preview?.format;
  if (format === 'jpeg') res.type('image/jpeg').send(await image.jpeg({ quality: preview!.quality }).toBuffer());
  else if (format === 'webp') res.type('image/webp').send(await image.webp({ quality: preview!.quality }).toBuffer());
  else res.type('image/png').send(await image.png().toBuffer());
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function upload(ctx: ServerContext, contentType: string | undefined, body: Buffer, res: Response): void {
  const parts = parseMultipart(body, multipartBoundary(contentType));
  const field = (name: string) => parts.find((p) => p.name === name && p.filename === undefined)?.data.toString('utf8');
  const image = parts.find((p) => p.name === 'image' && p.filename !== undefined);
  if (!image) return fail(res, 400, 'the form has no "image" file field');
  const type = field('type') || 'input';
  if (!FOLDER_TYPES.includes(type)) return fail(res, 400, `type must be input, output or temp, not "${type}"`);
  const overwrite = ['true', '1'].includes(field('overwrite') ?? '');
  const subfolder = field('subfolder') ?? '';
  const base = image.filename!.split(/[\\/]/).pop() ?? '';
  if (!base || base === '.' || base === '..' || base.includes('\0')) return fail(res, 400, 'the image has no usable file name');
  if (!IMAGE_TYPES[extname(base).toLowerCase()]) return fail(res, 400, `"${base}" is not an image file name (${Object.keys(IMAGE_TYPES).join(' ')})`);
  const root = folderOf(ctx.config, type as FolderType);
  const dir = resolve(root, subfolder);
  if (!isInside(dir, root) || subfolder.includes('\0')) return fail(res, 400, 'subfolder leaves the folder');
  mkdirSync(dir, { recursive: true });
  if (!realPathInside(dir, root)) return fail(res, 400, 'subfolder links outside the folder');

  const stored = relative(root, dir).split(sep).join('/');
  let name = base;
  if (!overwrite) {
    const ext = extname(base);
    const stem = base.slice(0, base.length - ext.length);
    const hash = sha256(image.data);
    for (let i = 1; existsSync(join(dir, name)); i++) {
      if (statSync(join(dir, name)).isFile() && sha256(readFileSync(join(dir, name))) === hash) {
        return sendJson(res, { name, subfolder: stored, type });
      }
      name = `${stem} (${i})${ext}`;
    }
  }
  // Written beside the target and renamed, so a reader never sees half a file.
  const temp = join(dir, `.${name}.${process.pid}.upload`);
  writeFileSync(temp, image.data);
  renameSync(temp, join(dir, name));
  sendJson(res, { name, subfolder: stored, type });
}

export function fileRoutes(ctx: ServerContext): Route[] {
  return [
    {
      method: 'get',
      path: '/view',
      body: 'none',
      doc: {
        summary: 'An image from the output, input or temp folder',
        description: 'filename may carry " [output]"-style annotations. Paths that leave the folder (.., absolute, symlinks) are refused.',
        tags: ['files'],
        parameters: [
          doc.query('filename', 'File name', { type: 'string' }, true),
          doc.query('type', 'output (default), input or temp', { type: 'string', enum: ['output', 'input', 'temp'] }),
          doc.query('subfolder', 'Subfolder inside the folder'),
          doc.query('preview', 'Re-encode: webp;QUALITY or jpeg;QUALITY'),
          doc.query('channel', 'rgba (default, the file as is), rgb (no alpha, PNG) or a (alpha only, PNG)', { type: 'string', enum: ['rgba', 'rgb', 'a'] }),
        ],
        responses: {
          '200': { description: 'The image', content: { 'image/png': {}, 'image/jpeg': {}, 'image/webp': {}, 'application/octet-stream': {} } },
          '400': doc.empty('Missing or malformed parameter'),
          '403': doc.empty('The path leaves the folder'),
          '404': doc.empty('No such file'),
        },
      },
      handler: (req, res) => view(ctx, req.query as Record<string, unknown>, res),
    },
    {
      method: 'post',
      path: '/upload/image',
      body: 'upload',
      doc: {
        summary: 'Upload an image (multipart/form-data)',
        description: 'Fields: image (file), type (input default, temp, output), subfolder, overwrite ("true"/"1"). An identical file with the same name is reused; a different one gets "name (1).png".',
        tags: ['files'],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' }, type: { type: 'string' }, subfolder: { type: 'string' }, overwrite: { type: 'string' } } },
            },
          },
        },
        responses: {
          '200': doc.json('Stored', { type: 'object', properties: { name: { type: 'string' }, subfolder: { type: 'string' }, type: { type: 'string' } } }),
          '400': doc.empty('No image field, not an image name, or a subfolder outside the folder'),
          '413': doc.empty('Larger than --max-upload-size'),
        },
      },
      handler: (req, res) => upload(ctx, req.headers['content-type'], req.body as Buffer, res),
    },
  ];
}
