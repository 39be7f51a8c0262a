/**
 * The server end to end: one real server on 127.0.0.1 (random port, temporary folders, the embedded tiny
 * model, the real engine worker), real socket.io and `/ws` clients, workflows in the API and editor formats.
 */
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { io as connectSocketIo, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comfyPngText, encodePng, readPngText } from '../../engine/image/index.ts';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { writeSafetensors } from '../../engine/safetensors/writer.ts';
import { NODES } from '../../nodes/index.ts';
import type { AppConfig } from '../../server/config.ts';
import { createApp } from '../../server/http/app.ts';
import { openApiDocument } from '../../server/http/openapi.ts';
import { apiRoutes } from '../../server/http/app.ts';
import type { RunningServer } from '../../server/serve.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { postJson, removeTempConfig, request, startTestServer, tempConfig, TINY, txt2img, WsRecorder } from './helpers.ts';

let config: AppConfig;
let server: RunningServer;
let base: string;
let ws: WsRecorder;
const CLIENT = 'test-client';

/** Queues a prompt for CLIENT and waits for it to finish; returns its id and its messages. */
async function run(prompt: unknown, extra: Record<string, unknown> = {}) {
  const res = await postJson(base, '/api/prompt', { prompt, client_id: CLIENT, ...extra });
  expect(res.status, res.text).toBe(200);
  const id = (res.json as { prompt_id: string }).prompt_id;
  const end = await ws.finished(id);
  return { id, end, messages: ws.of(id) };
}

type History = Record<string, { outputs: Record<string, { images: { filename: string; subfolder: string; type: string }[] }>; status: { status_str: string; outcome: string; messages: [string, Record<string, unknown>][] }; timing: Record<string, number> }>;

beforeAll(async () => {
  config = tempConfig();
  server = await startTestServer(config);
  base = server.url;
  ws = await WsRecorder.open(`${base.replace('http', 'ws')}/ws?clientId=${CLIENT}`);
});

afterAll(async () => {
  ws?.close();
  await server?.close();
  removeTempConfig(config);
});

describe('the node registry', () => {
  it('serves object_info in ComfyUI’s shape for every node, with the 64-bit seed max and folder combos', async () => {
    const res = await request(base, '/api/object_info');
    const info = res.json as Record<string, Record<string, Json>>;
    expect(Object.keys(info).sort()).toEqual([...NODES.keys()].sort());
    expect(res.text).toContain('"max":18446744073709551615');
    const ks = info.KSampler as { input: { required: Record<string, [Json, Record<string, Json>]> }; input_order: { required: string[] } };
    expect(ks.input.required.seed).toEqual(['INT', expect.objectContaining({ min: 0, max: 2n ** 64n - 1n, control_after_generate: true })]);
    expect(ks.input_order.required).toEqual(['model', 'seed', 'steps', 'cfg', 'sampler_name', 'scheduler', 'positive', 'negative', 'latent_image', 'denoise']);
    expect(info.KSampler).toMatchObject({ output: ['LATENT'], output_is_list: [false], output_name: ['LATENT'], name: 'KSampler', category: 'sampling', output_node: false, python_module: 'nodes' });
    const ckpt = (info.CheckpointLoaderSimple as { input: { required: { ckpt_name: [string[]] } } }).input.required.ckpt_name;
    expect(ckpt[0]).toContain(TINY);
    expect(info.SaveImage).toMatchObject({ output_node: true, output: [] });
    expect((await request(base, '/object_info/KSampler')).json).toEqual({ KSampler: info.KSampler });
    expect((await request(base, '/api/object_info/Nope')).json).toEqual({});
  });
});

describe('running workflows', () => {
  it('runs an API workflow, streaming ComfyUI’s messages over /ws in order, and records it in the history', async () => {
    expect(ws.messages[0]).toEqual({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: CLIENT } });
    const before = ws.binary.length;
    const { id, end, messages } = await run(txt2img());
    expect(end.type).toBe('execution_success');
    const types = messages.map((m) => m.type);
    expect(types[0]).toBe('execution_start');
    expect(types[1]).toBe('execution_cached');
    expect(types.filter((t) => t === 'progress')).toHaveLength(4);
    expect(messages.filter((m) => m.type === 'executing').map((m) => m.data.node)).toEqual(['4', '6', '7', '5', '3', '8', '9', null]);
    expect(types.slice(-2)).toEqual(['execution_success', 'executing']);
    expect(messages.find((m) => m.type === 'progress')?.data).toEqual({ value: 1, max: 4, node: '3', prompt_id: id });
    const executed = messages.find((m) => m.type === 'executed')!.data as { node: string; output: { images: { filename: string }[] } };
    expect(executed.node).toBe('9');
    // Step previews: binary frames, type 1 (PREVIEW_IMAGE), format 1 (JPEG), then the JPEG bytes.
    const frames = ws.binary.slice(before);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect([frames[0].readUInt32BE(0), frames[0].readUInt32BE(4), frames[0][8], frames[0][9]]).toEqual([1, 1, 0xff, 0xd8]);

    const history = (await request(base, `/api/history/${id}`)).json as History;
    const h = history[id];
    expect(h.status).toMatchObject({ status_str: 'success', completed: true, outcome: 'success' });
    expect(h.status.messages.map((m) => m[0])).toEqual(['execution_start', 'execution_cached', 'execution_success']);
    expect(h.outputs['9'].images[0]).toEqual({ filename: executed.output.images[0].filename, subfolder: '', type: 'output' });
    expect(h.timing.finished_at).toBeGreaterThanOrEqual(h.timing.started_at);
    expect((h as unknown as { prompt: Json[] }).prompt.slice(3)).toEqual([{ client_id: CLIENT }, ['9']]);

    const image = await fetch(`${base}/view?filename=${encodeURIComponent(h.outputs['9'].images[0].filename)}&type=output`);
    expect(image.headers.get('content-type')).toBe('image/png');
    const text = readPngText(new Uint8Array(await image.arrayBuffer()));
    expect(parseJson(text.prompt)).toMatchObject({ 3: { inputs: { seed: 42 } } });
  });

  it('re-runs only what changed: a new seed serves the loader and encoders from the cache', async () => {
    const { messages } = await run(txt2img({ 3: { seed: 18446744073709551615n } }));
    const cached = messages.find((m) => m.type === 'execution_cached')!.data.nodes as string[];
    expect(cached.sort()).toEqual(['4', '5', '6', '7']);
    expect(messages.filter((m) => m.type === 'executing').map((m) => m.data.node)).toEqual(['3', '8', '9', null]);
  });

  it('/free with free_memory drops the cached outputs', async () => {
    expect((await postJson(base, '/free', { unload_models: true, free_memory: true })).status).toBe(200);
    const { messages } = await run(txt2img({ 3: { seed: 7 } }));
    expect(messages.find((m) => m.type === 'execution_cached')!.data.nodes).toEqual([]);
  });

  it('runs an editor-format workflow (0.4) and embeds it in the saved PNG', async () => {
    const workflow = parseJson(readFileSync(join(repoRoot, 'workflows', 'txt2img.editor.json'), 'utf8')) as Record<string, Json>;
    const { id, end } = await run(workflow);
    expect(end.type).toBe('execution_success');
    const h = ((await request(base, `/history/${id}`)).json as History)[id];
    const stored = (h as unknown as { prompt: [number, string, Record<string, { inputs: Record<string, Json> }>] }).prompt[2];
    expect(stored['3'].inputs.seed).toBe(9007199254740993n);
    const file = h.outputs['9'].images[0].filename;
    const png = readPngText(readFileSync(join(config.outputDir, file)));
    expect(parseJson(png.workflow)).toEqual(workflow);
    expect((parseJson(png.prompt) as Record<string, { inputs: Record<string, Json> }>)['3'].inputs.seed).toBe(9007199254740993n);
  });

  it("runs ComfyUI's default graph (version 1) once pointed at the embedded model", async () => {
    const graph = parseJson(readFileSync(join(repoRoot, 'test', 'server', 'fixtures', 'default-graph.v1.json'), 'utf8')) as { nodes: { id: number; widgets_values?: Json[] }[] };
    graph.nodes.find((n) => n.id === 4)!.widgets_values = [TINY];
    graph.nodes.find((n) => n.id === 5)!.widgets_values = [64, 64, 1];
    graph.nodes.find((n) => n.id === 3)!.widgets_values![2] = 3; // steps
    const { end } = await run(graph);
    expect(end.type).toBe('execution_success');
  });

  it('reports an execution error with the node, message and traceback, records it, and carries on', async () => {
    writeFileSync(join(config.inputDir, 'broken.png'), 'not an image at all');
    const { id, end } = await run({ 1: { class_type: 'LoadImage', inputs: { image: 'broken.png' } }, 2: { class_type: 'PreviewImage', inputs: { images: ['1', 0] } } });
    expect(end.type).toBe('execution_error');
    expect(end.data).toMatchObject({ prompt_id: id, node_id: '1', node_type: 'LoadImage', executed: [], current_inputs: { image: ['broken.png'] } });
    expect(String(end.data.exception_message)).toContain('broken.png');
    expect((end.data.traceback as string[]).length).toBeGreaterThan(0);
    const h = ((await request(base, `/history/${id}`)).json as History)[id];
    expect(h.status).toMatchObject({ status_str: 'error', completed: false, outcome: 'error' });
    expect(h.status.messages.at(-1)?.[0]).toBe('execution_error');
    expect((await run(txt2img({ 3: { seed: 8 } }))).end.type).toBe('execution_success');
  });

  it('imports a PNG made here back into the same prompt, and queues it directly with ?queue=true', async () => {
    const { id } = await run(txt2img({ 3: { seed: 123 } }));
    const h = ((await request(base, `/history/${id}`)).json as History)[id];
    const png = readFileSync(join(config.outputDir, h.outputs['9'].images[0].filename));
    const imported = await request(base, '/api/workflow/import', { method: 'POST', body: png });
    expect(imported.json).toMatchObject({ format: 'png', workflow: null, prompt: txt2img({ 3: { seed: 123 } }) });
    const queued = await request(base, `/api/workflow/import?queue=true&client_id=${CLIENT}`, { method: 'POST', body: png });
    expect(queued.status).toBe(200);
    const again = (queued.json as { prompt_id: string }).prompt_id;
    expect((await ws.finished(again)).type).toBe('execution_success');
    const bad = await request(base, '/api/workflow/import', { method: 'POST', body: Buffer.from('hello') });
    expect(bad.status).toBe(400);
    expect((bad.json as { error: { type: string } }).error.type).toBe('invalid_workflow');
  });
});

describe('validation over HTTP', () => {
  it('answers 400 with ComfyUI’s {error, node_errors} and queues nothing', async () => {
    const remaining = async () => ((await request(base, '/prompt')).json as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining;
    const before = await remaining();
    const bad = await postJson(base, '/api/prompt', { prompt: txt2img({ 3: { steps: 0, sampler_name: 'nope' } }) });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
      node_errors: { 3: { class_type: 'KSampler', dependent_outputs: ['9'], errors: [{ type: 'value_smaller_than_min', details: 'steps', extra_info: { input_name: 'steps', received_value: 0 } }, { type: 'value_not_in_list' }] } },
    });
    expect((await postJson(base, '/prompt', { nothing: 1 })).json).toMatchObject({ error: { type: 'no_prompt' } });
    const broken = await request(base, '/prompt', { method: 'POST', body: '{"prompt": ' });
    expect([broken.status, (broken.json as { error: { type: string } }).error.type]).toEqual([400, 'invalid_json']);
    expect((await postJson(base, '/prompt', { prompt: { 1: { class_type: 'Nope', inputs: {} } } })).json).toMatchObject({ error: { type: 'missing_node_type' } });
    expect(await remaining()).toBe(before);
  });

  it('queues the valid outputs of a partly valid prompt with 200 and lists the others in node_errors', async () => {
    const prompt = { ...txt2img({ 3: { seed: 5 } }), 10: { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'x' } } };
    const res = await postJson(base, '/prompt', { prompt, client_id: CLIENT });
    expect(res.status).toBe(200);
    const { prompt_id, node_errors } = res.json as { prompt_id: string; node_errors: Record<string, { errors: { type: string }[] }> };
    expect(node_errors['10'].errors[0].type).toBe('return_type_mismatch');
    await ws.finished(prompt_id);
    const h = ((await request(base, `/history/${prompt_id}`)).json as History)[prompt_id];
    expect(Object.keys(h.outputs)).toEqual(['9']);
  });
});

describe('queue control', () => {
  it('interrupts mid-sampling; reorders, deletes and clears pending jobs; the next job runs normally', async () => {
    const long = await postJson(base, '/prompt', { prompt: txt2img({ 3: { steps: 2000, seed: 99 } }), client_id: CLIENT });
    const longId = (long.json as { prompt_id: string }).prompt_id;
    await ws.waitFor((m) => m.type === 'progress' && m.data.prompt_id === longId && (m.data.value as number) >= 2);

    const ids: string[] = [];
    for (const [i, extra] of [{}, {}, { front: true }, { number: -100 }].entries()) {
      const r = await postJson(base, '/prompt', { prompt: txt2img({ 3: { seed: 1000 + i } }), client_id: CLIENT, ...extra });
      ids.push((r.json as { prompt_id: string }).prompt_id);
    }
    type Queue = { queue_running: [number, string][]; queue_pending: [number, string][] };
    const queue = async () => (await request(base, '/api/queue')).json as Queue;
    let q = await queue();
    expect(q.queue_running.map((i) => i[1])).toEqual([longId]);
    expect(q.queue_pending.map((i) => i[1])).toEqual([ids[3], ids[2], ids[0], ids[1]]);
    await postJson(base, '/queue', { move_to_front: [ids[1]] });
    await postJson(base, '/queue', { delete: [ids[2]] });
    q = await queue();
    expect(q.queue_pending.map((i) => i[1])).toEqual([ids[1], ids[3], ids[0]]);
    await postJson(base, '/queue', { delete: [ids[3], ids[0]] });

    // An interrupt naming another job does nothing; naming the running one stops it.
    await postJson(base, '/interrupt', { prompt_id: ids[1] });
    await postJson(base, '/api/interrupt', { prompt_id: longId });
    const end = await ws.finished(longId);
    expect(end.type).toBe('execution_interrupted');
    expect(end.data).toMatchObject({ node_id: '3', node_type: 'KSampler' });
    const progressed = ws.of(longId).filter((m) => m.type === 'progress').length;
    expect(progressed).toBeLessThan(2000);
    const h = ((await request(base, `/history/${longId}`)).json as History)[longId];
    expect(h.status).toMatchObject({ status_str: 'error', completed: false, outcome: 'interrupted' });
    expect((await ws.finished(ids[1])).type).toBe('execution_success');

    await postJson(base, '/queue', { clear: true });
    expect(((await request(base, '/prompt')).json as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining).toBe(0);
    expect((await postJson(base, '/queue', { delete: 'not-a-list' })).status).toBe(400);
  });
});

describe('socket.io progress', () => {
  const connect = (clientId?: string) =>
    new Promise<{ socket: Socket; sid: string }>((resolve, reject) => {
      const socket = connectSocketIo(base, { auth: clientId ? { clientId } : {}, transports: ['websocket'] });
      socket.once('status', (data: { sid: string }) => resolve({ socket, sid: data.sid }));
      socket.once('connect_error', reject);
    });

  it('sends a job’s events only to the client that queued it, previews as JPEG bytes, and broadcasts jobs without a client', async () => {
    const a = await connect('alice');
    const b = await connect();
    expect(a.sid).toBe('alice');
    expect(b.sid).toBe(b.socket.id);
    const seen = { a: [] as string[], b: [] as string[], previews: [] as Buffer[] };
    for (const [name, client] of [['a', a], ['b', b]] as const) client.socket.onAny((event: string) => seen[name].push(event));
    a.socket.on('preview', (d: { image: Buffer; image_type: string }) => seen.previews.push(d.image));
    const done = (socket: Socket) => new Promise<Record<string, unknown>>((resolve) => socket.on('execution_success', resolve));

    const aDone = done(a.socket);
    const res = await postJson(base, '/prompt', { prompt: txt2img({ 3: { seed: 31 } }), client_id: 'alice' });
    const id = (res.json as { prompt_id: string }).prompt_id;
    expect((await aDone).prompt_id).toBe(id);
    expect(seen.a).toEqual(expect.arrayContaining(['execution_start', 'execution_cached', 'executing', 'progress', 'preview', 'executed', 'execution_success', 'status']));
    expect(seen.b.every((e) => e === 'status')).toBe(true);
    expect([seen.previews[0][0], seen.previews[0][1]]).toEqual([0xff, 0xd8]);

    const bDone = done(b.socket);
    await postJson(base, '/prompt', { prompt: txt2img({ 3: { seed: 32 } }) });
    await bDone;
    expect(seen.b).toContain('progress');
    a.socket.close();
    b.socket.close();
  });
});

describe('files', () => {
  const png = (value: number) => encodePng({ width: 2, height: 2, channels: 4, data: new Uint8Array(16).fill(value) }, comfyPngText({}));
  const upload = async (name: string, data: Uint8Array, fields: Record<string, string> = {}) => {
    const form = new FormData();
    form.append('image', new Blob([data]), name);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return request(base, '/api/upload/image', { method: 'POST', body: form });
  };

  it('uploads images, reusing identical files and renaming different ones; refuses bad names, escapes and oversize bodies', async () => {
    const a = await png(10);
    expect((await upload('cat.png', a)).json).toEqual({ name: 'cat.png', subfolder: '', type: 'input' });
    expect((await upload('cat.png', a)).json).toEqual({ name: 'cat.png', subfolder: '', type: 'input' });
    const b = await png(200);
    expect((await upload('cat.png', b)).json).toEqual({ name: 'cat (1).png', subfolder: '', type: 'input' });
    expect((await upload('cat.png', b, { overwrite: 'true' })).json).toMatchObject({ name: 'cat.png' });
    expect(readFileSync(join(config.inputDir, 'cat.png'))).toEqual(Buffer.from(b));
    expect((await upload('dog.png', a, { subfolder: 'pets', type: 'temp' })).json).toEqual({ name: 'dog.png', subfolder: 'pets', type: 'temp' });
    expect(readdirSync(join(config.tempDir, 'pets'))).toEqual(['dog.png']);
    expect((await upload('../../evil.png', a)).json).toMatchObject({ name: 'evil.png' }); // the path part is dropped
    expect((await upload('x.png', a, { subfolder: '../../outside' })).status).toBe(400);
    expect((await upload('page.html', a)).status).toBe(400);
    expect((await upload('big.png', new Uint8Array(2 * 1024 * 1024))).status).toBe(413);
    // The upload is usable as a LoadImage input right away.
    const v = await postJson(base, '/prompt', { prompt: { 1: { class_type: 'LoadImage', inputs: { image: 'cat (1).png' } }, 2: { class_type: 'PreviewImage', inputs: { images: ['1', 0] } } }, client_id: CLIENT });
    expect(v.status).toBe(200);
    expect((await ws.finished((v.json as { prompt_id: string }).prompt_id)).type).toBe('execution_success');
  });

  it('serves images with previews and channels, and refuses every way out of the folder', async () => {
    writeFileSync(join(config.outputDir, 'shot.png'), await png(128));
    const ok = await fetch(`${base}/view?filename=shot.png`);
    expect([ok.status, ok.headers.get('content-type')]).toEqual([200, 'image/png']);
    const jpeg = await fetch(`${base}/view?filename=shot.png&preview=jpeg;80`);
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
    const rgb = await fetch(`${base}/view?filename=shot.png&channel=rgb`);
    expect(rgb.headers.get('content-type')).toBe('image/png');
    const alpha = await fetch(`${base}/view?filename=shot.png&channel=a`);
    const { data, info } = await sharp(Buffer.from(await alpha.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect([info.channels, ...data.subarray(0, 4)]).toEqual([4, 0, 0, 0, 128]);
    expect((await fetch(`${base}/view?filename=${encodeURIComponent('shot.png [output]')}&type=input`)).status).toBe(200);

    const outside = join(config.dataDir, 'secret.png');
    writeFileSync(outside, await png(1));
    mkdirSync(join(config.outputDir, 'sub'), { recursive: true });
    symlinkSync(outside, join(config.outputDir, 'sub', 'link.png'));
    symlinkSync(config.dataDir, join(config.outputDir, 'linkdir'));
    const status = async (query: string) => (await fetch(`${base}/view?${query}`)).status;
    expect(await status('filename=../data/secret.png')).toBe(400);
    expect(await status('filename=%2Fetc%2Fpasswd')).toBe(400);
    expect(await status('filename=secret.png&subfolder=../data')).toBe(403);
    expect(await status('filename=secret.png&subfolder=/tmp')).toBe(403);
    expect(await status('filename=link.png&subfolder=sub')).toBe(403);
    expect(await status('filename=secret.png&subfolder=linkdir')).toBe(403);
    expect(await status('filename=missing.png')).toBe(404);
    expect(await status('filename=shot.png&type=models')).toBe(400);
    expect(await status('')).toBe(400);
  });
});

describe('the rest of the API', () => {
  it('lists models, system stats, features and embeddings', async () => {
    expect((await request(base, '/models')).json).toEqual(['checkpoints', 'loras']);
    expect((await request(base, '/api/models/checkpoints')).json).toContain(TINY);
    expect((await request(base, '/api/models/vae_approx')).status).toBe(404);
    expect((await request(base, '/embeddings')).json).toEqual([]);
    expect((await request(base, '/features')).json).toEqual({ supports_preview_metadata: true, max_upload_size: 1024 * 1024 });
    expect((await request(base, '/system_stats')).json).toMatchObject({ system: { os: 'posix', loragraph_version: expect.any(String) }, devices: [{ type: 'cpu' }] });
  });

  it('lists LoRAs with trigger words and inspects one by name, refusing names outside the folder', async () => {
    const dir = join(config.modelsDir, 'loras', 'styles');
    mkdirSync(dir, { recursive: true });
    const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(0.01).buffer);
    writeSafetensors(
      join(dir, 'circles.safetensors'),
      [
        { name: 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', dtype: 'F32', shape: [4, 32], data: f32(128) },
        { name: 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight', dtype: 'F32', shape: [32, 4], data: f32(128) },
        { name: 'lora_unet_down_blocks_0_attentions_0_proj_in.alpha', dtype: 'F32', shape: [], data: new Uint8Array(new Float32Array([2]).buffer) },
      ],
      { ss_tag_frequency: JSON.stringify({ '10_redcircle': { circle: 3 } }), ss_base_model_version: 'sd_v1' },
    );
    const list = (await request(base, '/api/loras')).json as { name: string; triggerWords: { words: string[] }; baseModel: { family: string } }[];
    // The demo LoRAs are installed with the embedded model; this one sits beside them.
    expect(list.map((l) => l.name)).toContain('shapes_outlined.safetensors');
    expect(list.find((l) => l.name === 'styles/circles.safetensors')).toMatchObject({ triggerWords: { words: ['redcircle'] }, baseModel: { family: 'SD1.x' } });
    const info = await request(base, `/api/loras/${encodeURIComponent('styles/circles')}/info`);
    expect(info.json).toMatchObject({ name: 'styles/circles', families: { LoRA: 1 }, ranks: { LoRA: { min: 4, max: 4 } }, alpha: { min: 2, max: 2, missing: 0 } });
    expect((await request(base, `/loras/${encodeURIComponent('../checkpoints/x')}/info`)).status).toBe(400);
    expect((await request(base, '/loras/nothing-like-it/info')).status).toBe(404);
  });

  it('refuses cross-origin requests on loopback hosts (HTTP and /ws) and allows same-origin ones', async () => {
    const host = new URL(base).host;
    const evil = await request(base, '/prompt', { method: 'POST', headers: { origin: 'http://evil.example' }, body: stringifyJson({ prompt: txt2img() }) });
    expect(evil.status).toBe(403);
    expect((await request(base, '/queue', { headers: { origin: 'null' } })).status).toBe(403);
    expect((await request(base, '/queue', { headers: { origin: `http://${host}` } })).status).toBe(200);
    await expect(WsRecorder.open(`${base.replace('http', 'ws')}/ws`, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
  });

  it('answers the feature_flags handshake on /ws and then sends previews with metadata', async () => {
    const client = await WsRecorder.open(`${base.replace('http', 'ws')}/api/ws?clientId=flags`);
    client.socket.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    expect((await client.waitFor((m) => m.type === 'feature_flags')).data).toEqual({ supports_preview_metadata: true, max_upload_size: 1024 * 1024 });
    const res = await postJson(base, '/prompt', { prompt: txt2img({ 3: { seed: 77 } }), client_id: 'flags' });
    const id = (res.json as { prompt_id: string }).prompt_id;
    await client.finished(id);
    const frame = client.binary[0];
    expect(frame.readUInt32BE(0)).toBe(4);
    const meta = JSON.parse(frame.subarray(8, 8 + frame.readUInt32BE(4)).toString()) as Record<string, string>;
    expect(meta).toMatchObject({ node_id: '3', prompt_id: id, image_type: 'image/jpeg' });
    expect(ws.of(id)).toEqual([]); // another client's job
    client.close();
  });

  it('serves the status page, its script and the socket.io client', async () => {
    const page = await request(base, '/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="app.js"></script>');
    expect((await request(base, '/app.js')).text).toContain('workflow/import?');
    expect((await request(base, '/socket.io/socket.io.js')).status).toBe(200);
  });

  it('documents every registered route in /openapi.json', async () => {
    const spec = (await request(base, '/api/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const app = createApp(server.context) as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } };
    const registered = app.router.stack.filter((l) => l.route).flatMap((l) => Object.keys(l.route!.methods).map((m) => [m, l.route!.path] as const));
    expect(registered.length).toBeGreaterThan(40);
    for (const [method, path] of registered) {
      const documented = path.replace(/^\/api(?=\/)/, '').replace(/:(\w+)/g, '{$1}');
      expect(spec.paths[documented]?.[method], `${method.toUpperCase()} ${path}`).toMatchObject({ summary: expect.any(String), responses: expect.any(Object) });
      expect(registered).toContainEqual([method, path.startsWith('/api/') ? path.slice(4) : `/api${path}`]);
    }
    expect(Object.keys(spec.paths).sort()).toEqual([...new Set(apiRoutes(server.context).map((r) => r.path))].sort());
    expect(openApiDocument(apiRoutes(server.context), '0').openapi).toBe('3.0.3');
  });

  it('keeps the history across a restart', async () => {
    const before = Object.keys((await request(base, '/history')).json as object);
    expect(before.length).toBeGreaterThan(5);
    ws.close();
    await server.close();
    server = await startTestServer(config);
    base = server.url;
    ws = await WsRecorder.open(`${base.replace('http', 'ws')}/ws?clientId=${CLIENT}`);
    expect(Object.keys((await request(base, '/history')).json as object)).toEqual(before);
    expect(Object.keys((await request(base, '/history?max_items=2')).json as object)).toEqual(before.slice(-2));
    await postJson(base, '/history', { delete: [before[0]] });
    await postJson(base, '/api/history', { clear: false });
    expect(Object.keys((await request(base, '/history')).json as object)).toEqual(before.slice(1));
  });
});
