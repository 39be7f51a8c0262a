import { describe, expect, it } from 'vitest';
import { detectModuleKind, familyLabel, parseLoraKey, summariseNames } from '../../engine/lora/index.ts';

describe('LoRA key normalisation', () => {
  const table: [string, { component: string; path: string; entry: string; style: string; firstEncoder?: boolean; module?: string }][] = [
    // kohya (diffusers paths), SD1/SD2 and SDXL text encoders
    ['lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', { component: 'unet', path: 'down_blocks_0_attentions_0_proj_in', entry: 'down', style: 'kohya' }],
    ['lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_up.weight', { component: 'unet', path: 'mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0', entry: 'up', style: 'kohya' }],
    ['lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha', { component: 'te', path: 'text_model_encoder_layers_0_self_attn_q_proj', entry: 'alpha', style: 'kohya', firstEncoder: false }],
    ['lora_te1_text_model_encoder_layers_11_mlp_fc1.lora_down.weight', { component: 'te1', path: 'text_model_encoder_layers_11_mlp_fc1', entry: 'down', style: 'kohya' }],
    ['lora_te2_text_model_encoder_layers_0_self_attn_k_proj.lora_up.weight', { component: 'te2', path: 'text_model_encoder_layers_0_self_attn_k_proj', entry: 'up', style: 'kohya' }],
    ['lora_te2_text_projection.lora_down.weight', { component: 'te2', path: 'text_projection', entry: 'down', style: 'kohya' }],
    // kohya names built from LDM paths (SDXL trainers)
    ['lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight', { component: 'unet', path: 'input_blocks_4_1_transformer_blocks_0_attn1_to_q', entry: 'down', style: 'kohya' }],
    ['lora_unet_input_blocks_1_0_in_layers_2.lora_mid.weight', { component: 'unet', path: 'input_blocks_1_0_in_layers_2', entry: 'mid', style: 'kohya' }],
    ['lora_unet_output_blocks_2_0_out_layers_3.alpha', { component: 'unet', path: 'output_blocks_2_0_out_layers_3', entry: 'alpha', style: 'kohya' }],
    ['lora_unet_middle_block_0_emb_layers_1.dora_scale', { component: 'unet', path: 'middle_block_0_emb_layers_1', entry: 'dora_scale', style: 'kohya' }],
    ['lora_unet_input_blocks_7_0_skip_connection.lora_up.weight', { component: 'unet', path: 'input_blocks_7_0_skip_connection', entry: 'up', style: 'kohya' }],
    ['lora_unet_input_blocks_3_0_op.lora_down.weight', { component: 'unet', path: 'input_blocks_3_0_op', entry: 'down', style: 'kohya' }],
    ['lora_unet_output_blocks_2_2_conv.lora_down.weight', { component: 'unet', path: 'output_blocks_2_2_conv', entry: 'down', style: 'kohya' }],
    ['lora_unet_diffusion_model_input_blocks_1_1_proj_in.lora_down.weight', { component: 'unet', path: 'input_blocks_1_1_proj_in', entry: 'down', style: 'kohya' }],
    // LyCORIS families
    ['lora_unet_down_blocks_0_resnets_0_conv1.hada_w1_a', { component: 'unet', path: 'down_blocks_0_resnets_0_conv1', entry: 'hada_w1_a', style: 'kohya' }],
    ['lora_unet_down_blocks_0_resnets_0_conv1.hada_t2', { component: 'unet', path: 'down_blocks_0_resnets_0_conv1', entry: 'hada_t2', style: 'kohya' }],
    ['lora_te_text_model_encoder_layers_0_mlp_fc1.lokr_w2_b', { component: 'te', path: 'text_model_encoder_layers_0_mlp_fc1', entry: 'lokr_w2_b', style: 'kohya' }],
    ['lora_unet_conv_in.a1.weight', { component: 'unet', path: 'conv_in', entry: 'a1', style: 'kohya' }],
    ['lora_unet_conv_in.oft_blocks', { component: 'unet', path: 'conv_in', entry: 'oft_blocks', style: 'kohya' }],
    ['lora_unet_conv_in.weight', { component: 'unet', path: 'conv_in', entry: 'ia3', style: 'kohya' }],
    ['lora_unet_conv_in.on_input', { component: 'unet', path: 'conv_in', entry: 'on_input', style: 'kohya' }],
    ['lora_unet_conv_in.diff_b', { component: 'unet', path: 'conv_in', entry: 'diff_b', style: 'kohya' }],
    ['lora_unet_conv_norm_out.w_norm', { component: 'unet', path: 'conv_norm_out', entry: 'w_norm', style: 'kohya' }],
    ['lycoris_down_blocks_1_attentions_0_proj_out.lokr_w1', { component: 'unet', path: 'down_blocks_1_attentions_0_proj_out', entry: 'lokr_w1', style: 'lycoris' }],
    ['oft_unet_down_blocks_0_attentions_0_proj_in.oft_blocks', { component: 'unet', path: 'down_blocks_0_attentions_0_proj_in', entry: 'oft_blocks', style: 'kohya-oft' }],
    // PEFT / diffusers
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight', { component: 'unet', path: 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0', entry: 'down', style: 'peft' }],
    ['unet.up_blocks.1.resnets.0.conv1.lora_B.weight', { component: 'unet', path: 'up_blocks_1_resnets_0_conv1', entry: 'up', style: 'peft' }],
    ['unet.up_blocks.1.resnets.0.conv1.lora_B.bias', { component: 'unet', path: 'up_blocks_1_resnets_0_conv1', entry: 'up_bias', style: 'peft' }],
    ['unet.mid_block.attentions.0.proj_in.lora_magnitude_vector', { component: 'unet', path: 'mid_block_attentions_0_proj_in', entry: 'magnitude', style: 'peft' }],
    ['unet.mid_block.attentions.0.proj_in.lora_A.default.weight', { component: 'unet', path: 'mid_block_attentions_0_proj_in', entry: 'down', style: 'peft' }],
    ['text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight', { component: 'te', path: 'text_model_encoder_layers_0_self_attn_q_proj', entry: 'up', style: 'peft', firstEncoder: true }],
    ['text_encoder_2.text_model.encoder.layers.3.mlp.fc2.lora_A.weight', { component: 'te2', path: 'text_model_encoder_layers_3_mlp_fc2', entry: 'down', style: 'peft' }],
    ['base_model.model.down_blocks.2.attentions.1.proj_out.lora_A.weight', { component: 'unet', path: 'down_blocks_2_attentions_1_proj_out', entry: 'down', style: 'peft' }],
    ['base_model.model.text_model.encoder.layers.1.mlp.fc1.lora_B.weight', { component: 'te', path: 'text_model_encoder_layers_1_mlp_fc1', entry: 'up', style: 'peft', firstEncoder: true }],
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight', { component: 'unet', path: 'down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k', entry: 'down', style: 'diffusers' }],
    ['text_encoder.text_model.encoder.layers.0.self_attn.v_proj.lora_linear_layer.up.weight', { component: 'te', path: 'text_model_encoder_layers_0_self_attn_v_proj', entry: 'up', style: 'diffusers', firstEncoder: true }],
    [
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight',
      { component: 'unet', path: 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0', entry: 'up', style: 'diffusers', module: 'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0' },
    ],
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight', { component: 'unet', path: 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q', entry: 'down', style: 'diffusers' }],
    ['model.diffusion_model.input_blocks.4.1.proj_in.lora_up.weight', { component: 'unet', path: 'input_blocks_4_1_proj_in', entry: 'up', style: 'peft' }],
    // OMI
    ['clip_l.text_model.encoder.layers.0.mlp.fc1.lora_down.weight', { component: 'te', path: 'text_model_encoder_layers_0_mlp_fc1', entry: 'down', style: 'omi', firstEncoder: true }],
    ['clip_g.text_model.encoder.layers.0.mlp.fc1.alpha', { component: 'te2', path: 'text_model_encoder_layers_0_mlp_fc1', entry: 'alpha', style: 'omi' }],
  ];

  it.each(table)('%s', (key, want) => {
    const parsed = parseLoraKey(key);
    expect('reason' in parsed).toBe(false);
    expect(parsed).toMatchObject(want);
  });

  it('explains keys it cannot use', () => {
    expect(parseLoraKey('lora_unet_down_blocks_0_attentions_0_proj_in.bias_indices')).toEqual({ reason: 'unknown entry "bias_indices"' });
    expect(parseLoraKey('transformer.single_blocks.0.linear1.lora_A.weight')).toHaveProperty('reason');
    expect(parseLoraKey('bundle_emb.myword.string_to_param.*')).toHaveProperty('reason');
  });

  it('summarises many names in a few lines', () => {
    const names = Array.from({ length: 36 }, (_, i) => `lora_te2_text_model_encoder_layers_${i % 12}_self_attn_${'qkv'[i % 3]}_proj`);
    names.push('lora_unet_conv_in');
    const text = summariseNames(names);
    expect(text).toContain('lora_te2_text_model_encoder_layers_N_self_attn_q_proj ×12');
    expect(text).toContain('lora_unet_conv_in');
    expect(text.split(', ')).toHaveLength(4);
    const many = Array.from({ length: 20 }, (_, i) => `kind${'abcdefghijklmnopqrst'[i]}_x`);
    expect(summariseNames(many, 3)).toMatch(/and 17 more kinds$/);
  });
});

describe('LoRA family detection', () => {
  const shapes: Record<string, number[]> = {
    up: [8, 4],
    down: [4, 8],
    down3x3: [4, 8, 3, 3],
    mid: [4, 4, 3, 3],
    oft3: [2, 4, 4],
    oft4: [2, 2, 4, 4],
  };
  const kind = (entries: string[], shape: (e: string) => number[] = (e) => shapes[e] ?? [1]) => detectModuleKind(new Set(entries), shape);

  it.each([
    [['up', 'down', 'alpha'], 'LoRA'],
    [['up', 'down'], 'LoRA'],
    [['up', 'down', 'mid', 'alpha'], 'LoCon (Tucker)'],
    [['up', 'down', 'alpha', 'dora_scale'], 'DoRA (LoRA)'],
    [['up', 'down', 'magnitude'], 'DoRA (LoRA)'],
    [['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b', 'alpha'], 'LoHa'],
    [['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b', 'hada_t1', 'hada_t2'], 'LoHa (Tucker)'],
    [['lokr_w1', 'lokr_w2'], 'LoKr'],
    [['lokr_w1', 'lokr_w2_a', 'lokr_w2_b', 'alpha'], 'LoKr'],
    [['lokr_w1_a', 'lokr_w1_b', 'lokr_w2_a', 'lokr_w2_b', 'lokr_t2'], 'LoKr (Tucker)'],
    [['lokr_w1', 'lokr_w2_a', 'lokr_w2_b', 'dora_scale'], 'DoRA (LoKr)'],
    [['a1', 'a2', 'b1', 'b2', 'alpha'], 'GLoRA'],
    [['ia3', 'on_input'], '(IA)^3'],
    [['diff', 'diff_b'], 'full diff'],
    [['diff_b'], 'full diff'],
    [['w_norm', 'b_norm'], 'norm'],
  ])('%j → %s', (entries, label) => {
    const k = kind(entries);
    expect(typeof k).toBe('object');
    expect(familyLabel(k as Exclude<typeof k, string>)).toBe(label);
  });

  it('tells LoCon from LoRA by the kernel and OFT from BOFT by the block rank', () => {
    expect(kind(['up', 'down'], (e) => (e === 'down' ? shapes.down3x3 : shapes.up))).toMatchObject({ family: 'locon', tucker: false });
    expect(kind(['oft_blocks', 'alpha'], () => shapes.oft3)).toMatchObject({ family: 'oft' });
    expect(kind(['oft_blocks'], () => shapes.oft4)).toMatchObject({ family: 'boft' });
  });

  it('reports incomplete modules and ignored entries', () => {
    expect(kind(['up', 'alpha'])).toMatch(/lora_up but no lora_down/);
    expect(kind(['hada_w1_a', 'hada_w1_b'])).toMatch(/lacks hada_w2_a, hada_w2_b/);
    expect(kind(['lokr_w1'])).toMatch(/lacks lokr_w2/);
    expect(kind(['ia3'])).toMatch(/no LoRA family/);
    expect(kind(['on_input'])).toMatch(/no weight/);
    expect(kind(['up', 'down', 'rescale'])).toMatchObject({ family: 'lora', ignored: ['rescale'] });
  });
});
