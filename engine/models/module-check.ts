/**
 * Runs one module of a checkpoint on named input tensors and returns named outputs — the `loragraph eval`
 * command, how users (and our tests) compare a model against a reference implementation. Tensor names
 * follow the shared reference files: clip.*, clipxl.*, unet.*, vae.*.
 */
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { createSession, ort, type SessionOptions } from '../runtime/session.ts';
import { SafetensorsFile, f32Entry, writeSafetensors, type TensorEntry } from '../safetensors/index.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { buildClipGraph } from './clip.ts';
import { buildUNetGraph } from './unet.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae.ts';

export const MODULES = ['clip', 'unet', 'vae-decode', 'vae-encode'] as const;
export type ModuleName = (typeof MODULES)[number];

export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

type Tensors = ReadonlyMap<string, NamedTensor>;

function need(inputs: Tensors, name: string, module: ModuleName): NamedTensor {
  const t = inputs.get(name);
  if (!t) throw new InvalidInputError(`module ${module} needs an input tensor named "${name}" (have: ${[...inputs.keys()].join(', ') || 'none'})`);
  return t;
}

function tensor(t: NamedTensor, type: 'float32' | 'int64'): ort.Tensor {
  if (type === 'int64') {
    const ids = t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(t.data, (v) => BigInt(Math.round(v)));
    return new ort.Tensor('int64', ids, [...t.shape]);
  }
  const values = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data, Number);
  return new ort.Tensor('float32', values, [...t.shape]);
}

function out(r: ort.InferenceSession.ReturnType, name: string): NamedTensor {
  return { shape: r[name].dims, data: r[name].data as Float32Array };
}

const layerIndex = (layer: number) => new ort.Tensor('int64', BigInt64Array.from([BigInt(layer)]), [1]);

async function runClip(ckpt: Checkpoint, inputs: Tensors, options: SessionOptions): Promise<Map<string, NamedTensor>> {
  const result = new Map<string, NamedTensor>();
  if (inputs.has('clipxl.input_ids_l')) {
    // SDXL: context = both encoders' penultimate layers side by side; pooled = the second's projection.
    const hidden: NamedTensor[] = [];
    for (const [i, prefix, name] of [[0, 'te1', 'clipxl.input_ids_l'], [1, 'te2', 'clipxl.input_ids_g']] as const) {
      const config = ckpt.config.clip[i];
      if (!config) throw new NotFoundError(`${ckpt.path} has no ${prefix} text encoder`);
      const session = await createSession(buildClipGraph(ckpt, prefix, config).build(), options);
      const r = await session.run({ input_ids: tensor(need(inputs, name, 'clip'), 'int64'), layer: layerIndex(config.layers - 2) });
      hidden.push(out(r, 'hidden'));
      if (prefix === 'te2') result.set('clipxl.pooled', out(r, 'pooled'));
      await session.release();
    }
    result.set('clipxl.context', concatLastAxis(hidden));
    return result;
  }
  const config = ckpt.config.clip[0];
  if (!config) throw new NotFoundError(`${ckpt.path} has no text encoder`);
  const prefix = ckpt.config.family === 'sdxl' ? 'te1' : 'te';
  const session = await createSession(buildClipGraph(ckpt, prefix, config).build(), options);
  const ids = tensor(need(inputs, 'clip.input_ids', 'clip'), 'int64');
  const last = await session.run({ input_ids: ids, layer: layerIndex(config.layers - 1) });
  const penultimate = await session.run({ input_ids: ids, layer: layerIndex(config.layers - 2) });
  result.set('clip.last_hidden_state', out(last, 'last_hidden_state'));
  result.set('clip.pooled', out(last, 'pooled'));
  result.set('clip.penultimate_hidden_state', out(penultimate, 'hidden'));
  result.set('clip.penultimate_final_ln', out(penultimate, 'hidden_final_ln'));
  await session.release();
  return result;
}

function concatLastAxis(parts: readonly NamedTensor[]): NamedTensor {
  const widths = parts.map((p) => p.shape[p.shape.length - 1]);
  const total = widths.reduce((a, b) => a + b, 0);
  const rows = parts[0].data.length / widths[0];
  const data = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let offset = r * total;
    parts.forEach((p, i) => {
      data.set((p.data as Float32Array).subarray(r * widths[i], (r + 1) * widths[i]), offset);
      offset += widths[i];
    });
  }
  return { shape: [...parts[0].shape.slice(0, -1), total], data };
}

async function runUNet(ckpt: Checkpoint, inputs: Tensors, options: SessionOptions): Promise<Map<string, NamedTensor>> {
  let config = ckpt.config.unet;
  if (!config) throw new NotFoundError(`${ckpt.path} has no UNet`);
  const feeds: Record<string, ort.Tensor> = {
    sample: tensor(need(inputs, 'unet.sample', 'unet'), 'float32'),
    timestep: tensor(need(inputs, 'unet.timestep', 'unet'), 'float32'),
    encoder_hidden_states: tensor(need(inputs, 'unet.encoder_hidden_states', 'unet'), 'float32'),
  };
  if (config.admInChannels > 0) {
    const textEmbeds = need(inputs, 'unet.text_embeds', 'unet');
    feeds.text_embeds = tensor(textEmbeds, 'float32');
    feeds.time_ids = tensor(need(inputs, 'unet.time_ids', 'unet'), 'float32');
    // A UNet-only SDXL file does not say how wide the pooled text is; the input does.
    if (config.timeIdDim === 0) config = { ...config, timeIdDim: (config.admInChannels - textEmbeds.shape[1]) / config.timeIdCount };
  }
  const session = await createSession(buildUNetGraph(ckpt, config).build(), options);
  const r = await session.run(feeds);
  await session.release();
  return new Map([['unet.out', out(r, 'out')]]);
}

async function runVae(ckpt: Checkpoint, module: ModuleName, inputs: Tensors, options: SessionOptions): Promise<Map<string, NamedTensor>> {
  const config = ckpt.config.vae;
  if (!config) throw new NotFoundError(`${ckpt.path} has no VAE`);
  if (module === 'vae-decode') {
    const session = await createSession(buildVaeDecoderGraph(ckpt, config).build(), options);
    const r = await session.run({ latent: tensor(need(inputs, 'vae.latent', module), 'float32') });
    await session.release();
    return new Map([['vae.decoded', out(r, 'decoded')]]);
  }
  const session = await createSession(buildVaeEncoderGraph(ckpt, config).build(), options);
  const r = await session.run({ image: tensor(need(inputs, 'vae.image', module), 'float32') });
  await session.release();
  return new Map([
    ['vae.encoded_mean', out(r, 'mean')],
    ['vae.encoded_logvar', out(r, 'logvar')],
  ]);
}

export async function runModuleCheck(checkpointPath: string, module: ModuleName, inputs: Tensors, options: SessionOptions = {}): Promise<Map<string, NamedTensor>> {
  if (!MODULES.includes(module)) throw new InvalidInputError(`unknown module "${module}"; choose one of ${MODULES.join(', ')}`);
  const ckpt = openCheckpoint(checkpointPath);
  try {
    if (module === 'clip') return await runClip(ckpt, inputs, options);
    if (module === 'unet') return await runUNet(ckpt, inputs, options);
    return await runVae(ckpt, module, inputs, options);
  } finally {
    ckpt.close();
  }
}

/** Every tensor of a safetensors file (float dtypes as float32, integer ids as int64). */
export function readTensors(path: string): Map<string, NamedTensor> {
  const file = SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, NamedTensor>();
    for (const info of file.infos()) {
      const data = info.dtype === 'I64' ? new BigInt64Array(file.readBytes(info.name).slice().buffer) : file.readFloat32(info.name);
      tensors.set(info.name, { shape: info.shape, data });
    }
    return tensors;
  } finally {
    file.close();
  }
}

export function writeTensors(path: string, tensors: ReadonlyMap<string, NamedTensor>): void {
  const entries: TensorEntry[] = [...tensors].map(([name, t]) =>
    t.data instanceof BigInt64Array
      ? { name, dtype: 'I64', shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) }
      : f32Entry(name, t.shape, t.data),
  );
  writeSafetensors(path, entries);
}
