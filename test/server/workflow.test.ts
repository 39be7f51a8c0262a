import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { comfyPngText, encodePng } from '../../engine/image/index.ts';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { NODES } from '../../nodes/index.ts';
import { loadWorkflowBytes, loadWorkflowJson } from '../../server/workflow/load.ts';
import { uiToApi } from '../../server/workflow/ui-to-api.ts';
import { repoRoot } from '../helpers/fixtures.ts';

type Workflow = Record<string, Json> & { nodes: Record<string, Json>[]; links: Json[] };

const read = (path: string) => parseJson(readFileSync(path, 'utf8')) as Workflow;
/** ComfyUI's default graph in the version 1 format (link objects), as its frontend ships it. */
const defaultGraph = () => read(join(repoRoot, 'test', 'server', 'fixtures', 'default-graph.v1.json'));
const editorExample = () => read(join(repoRoot, 'workflows', 'txt2img.editor.json'));

/** The same graph as version 0.4 saves it: link arrays and last_* counters. */
function toV04(v1: Workflow): Workflow {
  const links = v1.links.map((l) => {
    const o = l as Record<string, Json>;
    return [o.id, o.origin_id, o.origin_slot, o.target_id, o.target_slot, o.type];
  });
  return { ...v1, links, version: 0.4, last_node_id: 9, last_link_id: 9, state: null };
}

const convert = (w: Workflow) => uiToApi(w, NODES);

describe('editor (UI) workflows → API prompts', () => {
  const expectedDefault = {
    3: { class_type: 'KSampler', inputs: { seed: 156680208700286, steps: 20, cfg: 8, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.ckpt' } },
    5: { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    6: { class_type: 'CLIPTextEncode', inputs: { text: 'beautiful scenery nature glass bottle landscape, , purple galaxy bottle,', clip: ['4', 1] } },
    7: { class_type: 'CLIPTextEncode', inputs: { text: 'text, watermark', clip: ['4', 1] } },
    8: { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    // SaveImage has no widgets_values in the default graph: the editor fills the widget's default.
    9: { class_type: 'SaveImage', inputs: { filename_prefix: 'LoraGraph', images: ['8', 0] } },
  };

  it("converts ComfyUI's default graph (version 1, link objects), skipping the seed's control_after_generate value", () => {
    expect(convert(defaultGraph())).toMatchObject(expectedDefault);
    expect(Object.keys(convert(defaultGraph())).sort()).toEqual(['3', '4', '5', '6', '7', '8', '9']);
  });

  it('converts the same graph saved as version 0.4 (link arrays) identically', () => {
    expect(convert(toV04(defaultGraph()))).toEqual(convert(defaultGraph()));
  });

  it('follows Reroutes, passes through bypassed nodes, applies PrimitiveNode values exactly, and drops muted and virtual nodes', () => {
    const prompt = convert(editorExample());
    expect(Object.keys(prompt).sort()).toEqual(['3', '4', '5', '6', '7', '8', '9']);
    expect(prompt['3'].inputs.seed).toBe(9007199254740993n); // from the PrimitiveNode, not rounded to a double
    expect(prompt['6'].inputs.clip).toEqual(['4', 1]); // through the bypassed CLIPSetLastLayer
    expect(prompt['8'].inputs.vae).toEqual(['4', 2]); // through the Reroute
    expect(prompt['6']._meta?.title).toBe('Positive');
    expect(prompt['9'].inputs.filename_prefix).toBe('editor');
  });

  it('a bypassed node passes on the input whose type fits the output, not just the same slot', () => {
    // A bypassed KSampler: its LATENT output is served by its latent_image input (slot 3), not by model (slot 0).
    const w = defaultGraph();
    w.nodes.find((n) => n.id === 3)!.mode = 4;
    const prompt = convert(w);
    expect(prompt['3']).toBeUndefined();
    expect(prompt['8'].inputs.samples).toEqual(['5', 0]);
  });

  it('an input fed by a muted node is left out, so validation reports it as missing', () => {
    const w = defaultGraph();
    w.nodes.find((n) => n.id === 5)!.mode = 2;
    const prompt = convert(w);
    expect(prompt['5']).toBeUndefined();
    expect(prompt['3'].inputs.latent_image).toBeUndefined();
  });

  it('maps named widget values and refuses subgraphs and legacy group nodes with a clear message', () => {
    const w = defaultGraph();
    w.nodes.find((n) => n.id === 5)!.widgets_values_named = { width: 96, height: 64, batch_size: 2 };
    expect(convert(w)['5'].inputs).toEqual({ width: 96, height: 64, batch_size: 2 });
    const sub = defaultGraph();
    sub.nodes.push({ id: 20, type: '0f2c3b6e-1234-4abc-9def-001122334455', mode: 0 });
    expect(() => convert(sub)).toThrow(/subgraph/);
    const grouped = { ...defaultGraph(), extra: { groupNodes: { myGroup: {} } } } as Workflow;
    expect(() => convert(grouped)).toThrow(/group nodes/);
  });
});

describe('loading workflow files', () => {
  const pixel = { width: 1, height: 1, channels: 3 as const, data: new Uint8Array(3) };

  it('prefers the exact prompt chunk of a PNG, keeps its workflow, and converts a workflow-only PNG', async () => {
    const prompt = { 9: { class_type: 'SaveImage', inputs: { seed: 18446744073709551615n } } };
    const png = await encodePng(pixel, comfyPngText({ prompt: stringifyJson(prompt), workflow: stringifyJson(defaultGraph()) }));
    const loaded = loadWorkflowBytes(png, 'a.png', NODES);
    expect(loaded.format).toBe('png');
    expect(loaded.prompt).toEqual(prompt);
    expect(loaded.workflow?.version).toBe(1);
    const workflowOnly = await encodePng(pixel, comfyPngText({ workflow: stringifyJson(defaultGraph()) }));
    expect(loadWorkflowBytes(workflowOnly, 'b.png', NODES).prompt).toMatchObject(expectedKSampler());
  });

  it('refuses a PNG without a workflow, saying what it has', async () => {
    const a1111 = await encodePng(pixel, comfyPngText({ parameters: 'a cat\nSteps: 20, Seed: 1' }));
    expect(() => loadWorkflowBytes(a1111, 'c.png', NODES)).toThrow(/only has A1111 "parameters"/);
    const bare = await encodePng(pixel);
    expect(() => loadWorkflowBytes(bare, 'd.png', NODES)).toThrow(/no "prompt" or "workflow"/);
  });

  it('reads API JSON, editor JSON and a saved POST /prompt body', () => {
    const api = { 9: { class_type: 'SaveImage', inputs: {} } };
    expect(loadWorkflowJson(api as unknown as Json, NODES)).toEqual({ prompt: api, format: 'api' });
    expect(loadWorkflowJson(defaultGraph(), NODES).format).toBe('ui');
    const body = { prompt: api, extra_data: { extra_pnginfo: { workflow: defaultGraph() } } } as unknown as Json;
    expect(loadWorkflowJson(body, NODES)).toMatchObject({ prompt: api, format: 'api', workflow: { version: 1 } });
  });
});

function expectedKSampler() {
  return { 3: { class_type: 'KSampler', inputs: { seed: 156680208700286, steps: 20 } } };
}
