/**
 * CLIP text encoder graph (transformers CLIPTextModel semantics; OpenCLIP towers are mapped onto the same
 * names by the checkpoint loader): token + position embeddings, pre-LN transformer layers with a causal
 * mask, final LayerNorm, pooled output at the end token, optional text projection.
 *
 * Inputs:  input_ids [batch, positions] int64; layer [1] int64 — which layer's output `hidden` returns
 *          (0-based; clip skip N selects layer `layers - N`).
 * Outputs: hidden [batch, positions, width] (that layer, no final LayerNorm), hidden_final_ln (the same with
 *          the final LayerNorm, what SD1's clip skip feeds the UNet), last_hidden_state (last layer + final
 *          LayerNorm), pooled [batch, width|projection] (final-LayerNorm state at the highest token id,
 *          i.e. the end token; projected when the encoder has a text projection).
 */
import { Graph, ops, type Value } from '../onnx/index.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { ClipConfig } from './config.ts';
import { ModelBuilder, type GraphPlan } from './layers.ts';

export const CLIP_INPUTS = { ids: 'input_ids', layer: 'layer' } as const;

export function buildClipGraph(checkpoint: Checkpoint, prefix: string, config: ClipConfig, plan?: GraphPlan): Graph {
  const graph = new Graph(`clip-${prefix}`);
  const b = new ModelBuilder(graph, checkpoint, plan);
  const p = `${prefix}.text_model`;
  const T = config.maxPositions;
  const W = config.width;
  const ids = graph.input(CLIP_INPUTS.ids, 'int64', ['batch', T]);
  const layer = graph.input(CLIP_INPUTS.layer, 'int64', [1]);

  const tokens = ops.gather(b.weight(`${p}.embeddings.token_embedding.weight`), ids);
  let x: Value = ops.add(tokens, b.weight(`${p}.embeddings.position_embedding.weight`, [T, W]));
  x = ops.reshape(x, [-1, W]);

  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = -1e30;
  const mask = graph.constant(causal, [1, 1, T, T]);
  const act = config.activation === 'gelu' ? ops.gelu : ops.quickGelu;

  const layerOutputs: Value[] = [];
  for (let i = 0; i < config.layers; i++) {
    const l = `${p}.encoder.layers.${i}`;
    x = graph.within(`layer${i}`, () => {
      const h = b.layerNorm(x, `${l}.layer_norm1`);
      const as3d = (v: Value) => ops.reshape(v, [-1, T, W]);
      const q = as3d(b.linear(h, `${l}.self_attn.q_proj`));
      const k = as3d(b.linear(h, `${l}.self_attn.k_proj`));
      const v = as3d(b.linear(h, `${l}.self_attn.v_proj`));
      const attended = ops.reshape(ops.attention(q, k, v, config.heads, mask), [-1, W]);
      const y = ops.add(x, b.linear(attended, `${l}.self_attn.out_proj`));
      const m = b.linear(act(b.linear(b.layerNorm(y, `${l}.layer_norm2`), `${l}.mlp.fc1`)), `${l}.mlp.fc2`);
      return ops.add(y, m);
    });
    layerOutputs.push(ops.unsqueeze(ops.reshape(x, [-1, T, W]), [0]));
  }

  const finalLn = (v: Value) => b.layerNorm(v, `${p}.final_layer_norm`);
  const selected = ops.reshape(ops.gather(ops.concat(layerOutputs, 0), layer), [-1, T, W]);
  graph.output(selected, 'hidden');
  graph.output(finalLn(selected), 'hidden_final_ln');
  const last = ops.reshape(finalLn(x), [-1, T, W]);
  graph.output(last, 'last_hidden_state');

  // The pooled state sits at each row's highest token id (the end token in CLIP's vocabulary).
  const eos = ops.argmax(ids, 1);
  const flatIndex = ops.add(ops.mul(rangeOfBatch(graph, ids), graph.constant([T], [], 'int64')), eos);
  let pooled = ops.gather(ops.reshape(finalLn(x), [-1, W]), flatIndex);
  if (config.projectionDim > 0) pooled = ops.linear(pooled, b.weight(`${prefix}.text_projection.weight`));
  graph.output(pooled, 'pooled');
  return graph;
}

/** [0, 1, …, batch-1] as int64, built from the runtime batch size of `ids`. */
function rangeOfBatch(graph: Graph, ids: Value): Value {
  const shape = graph.node('Shape', [ids], [{ type: 'int64', shape: [1] }], { end: 1 })[0];
  const batch = ops.reshape(shape, []);
  return graph.node('Range', [graph.constant([0], [], 'int64'), batch, graph.constant([1], [], 'int64')], [{ type: 'int64', shape: [ids.dim(0)] }])[0];
}
