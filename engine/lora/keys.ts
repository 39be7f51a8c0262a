/**
 * Normalises the tensor names of every LoRA naming style into (component, module path, entry):
 *   kohya / LyCORIS  lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight, lora_te1_…, lora_te2_…,
 *                    lycoris_…, oft_unet_… (kohya OFT), and kohya names built from LDM paths
 *                    (lora_unet_input_blocks_4_1_…) — the module part never contains a dot;
 *   PEFT / diffusers unet.….lora_A.weight, text_encoder(_2).….lora_B.weight, base_model.model.…,
 *                    ….lora.down.weight, ….lora_linear_layer.up.weight, ….processor.to_q_lora.down.weight,
 *                    ….lora_magnitude_vector; OMI clip_l. / clip_g. / unet.
 * The module path is spelled the kohya way (dots → underscores): that spelling is not reversible, so the
 * model side builds the same spelling forward from its own names (targets.ts) and looks modules up by it.
 */

export type LoraComponent = 'unet' | 'te' | 'te1' | 'te2';

/** How a key was written, for reports (`inspect`). */
export type KeyStyle = 'kohya' | 'lycoris' | 'kohya-oft' | 'peft' | 'diffusers' | 'omi';

export interface ParsedKey {
  /** The module's name as written in the file (everything before the entry). */
  readonly module: string;
  readonly component: LoraComponent;
  /** Module path inside the component, dots written as underscores. */
  readonly path: string;
  /**
   * The key names "the first text encoder" without saying which model (PEFT `text_encoder.`, OMI `clip_l.`):
   * `te` on SD1/SD2, `te1` on SDXL. kohya's `lora_te_` is SD1/SD2 only.
   */
  readonly firstEncoder: boolean;
  readonly style: KeyStyle;
  /** Normalised entry: up, down, mid, alpha, dora_scale, magnitude, up_bias, hada_w1_a, a1, diff, … */
  readonly entry: string;
}

/** Entries as kohya and LyCORIS write them after the module name, and what they are called here. */
const KOHYA_ENTRIES: Readonly<Record<string, string>> = {
  'lora_up.weight': 'up',
  'lora_down.weight': 'down',
  'lora_mid.weight': 'mid',
  'lora_B.weight': 'up',
  'lora_A.weight': 'down',
  alpha: 'alpha',
  scale: 'scale',
  dora_scale: 'dora_scale',
  hada_w1_a: 'hada_w1_a',
  hada_w1_b: 'hada_w1_b',
  hada_w2_a: 'hada_w2_a',
  hada_w2_b: 'hada_w2_b',
  hada_t1: 'hada_t1',
  hada_t2: 'hada_t2',
  lokr_w1: 'lokr_w1',
  lokr_w1_a: 'lokr_w1_a',
  lokr_w1_b: 'lokr_w1_b',
  lokr_w2: 'lokr_w2',
  lokr_w2_a: 'lokr_w2_a',
  lokr_w2_b: 'lokr_w2_b',
  lokr_t2: 'lokr_t2',
  'a1.weight': 'a1',
  'a2.weight': 'a2',
  'b1.weight': 'b1',
  'b2.weight': 'b2',
  oft_blocks: 'oft_blocks',
  rescale: 'rescale',
  on_input: 'on_input',
  // (IA)^3 stores its vector as a bare `weight`; families.ts only accepts it next to `on_input`.
  weight: 'ia3',
  diff: 'diff',
  diff_b: 'diff_b',
  w_norm: 'w_norm',
  b_norm: 'b_norm',
};

/** Extra entries of dotted (PEFT / diffusers) files; the kohya ones are accepted there too. */
const DOTTED_ENTRIES: Readonly<Record<string, string>> = {
  ...KOHYA_ENTRIES,
  'lora_A.default.weight': 'down',
  'lora_B.default.weight': 'up',
  'lora_B.bias': 'up_bias',
  lora_A: 'down',
  lora_B: 'up',
  'lora.down.weight': 'down',
  'lora.up.weight': 'up',
  'lora_linear_layer.down.weight': 'down',
  'lora_linear_layer.up.weight': 'up',
  lora_magnitude_vector: 'magnitude',
  'lora_magnitude_vector.weight': 'magnitude',
};
/** Longest first, so `lora_A.weight` wins over the bare (IA)^3 `weight`. */
const DOTTED_SUFFIXES = Object.keys(DOTTED_ENTRIES).sort((a, b) => b.length - a.length);

const DIFFUSERS_STYLE = new Set(['lora.down.weight', 'lora.up.weight', 'lora_linear_layer.down.weight', 'lora_linear_layer.up.weight']);

const KOHYA_MODULE = /^(lora_unet|lora_te1|lora_te2|lora_te|lycoris|oft_unet)_(.+)$/;
const KOHYA_COMPONENT: Readonly<Record<string, [LoraComponent, KeyStyle]>> = {
  lora_unet: ['unet', 'kohya'],
  lora_te: ['te', 'kohya'],
  lora_te1: ['te1', 'kohya'],
  lora_te2: ['te2', 'kohya'],
  lycoris: ['unet', 'lycoris'],
  oft_unet: ['unet', 'kohya-oft'],
};

/** UNet module paths as they start in diffusers and LDM spelling (for keys without a component prefix). */
const UNET_ROOT = /^(down_blocks|mid_block|up_blocks|conv_in|conv_out|conv_norm_out|time_embedding|add_embedding|input_blocks|middle_block|output_blocks|time_embed|label_emb|out)\./;

/** Parses one tensor name, or explains why it is not a LoRA key this engine understands. */
export function parseLoraKey(key: string): ParsedKey | { readonly reason: string } {
  const dot = key.indexOf('.');
  const head = dot < 0 ? key : key.slice(0, dot);
  const kohya = KOHYA_MODULE.exec(head);
  if (kohya && dot > 0) {
    const entry = KOHYA_ENTRIES[key.slice(dot + 1)];
    if (!entry) return { reason: `unknown entry "${key.slice(dot + 1)}"` };
    const [component, style] = KOHYA_COMPONENT[kohya[1]];
    // Some tools spell the UNet root as it sits in the checkpoint (`…_diffusion_model_input_blocks_…`).
    const path = component === 'unet' ? kohya[2].replace(/^(model_)?diffusion_model_/, '') : kohya[2];
    return { module: head, component, path, firstEncoder: false, style, entry };
  }
  return parseDottedKey(key);
}

function parseDottedKey(key: string): ParsedKey | { readonly reason: string } {
  let module: string;
  let entry: string;
  let style: KeyStyle = 'peft';
  // Old diffusers attention processors: ….attn1.processor.to_q_lora.down.weight (to_out_lora = to_out.0).
  const processor = /^(.*?)(?:\.processor)?\.(to_q|to_k|to_v|to_out)_lora\.(up|down)\.weight$/.exec(key);
  if (processor) {
    module = `${processor[1]}.${processor[2] === 'to_out' ? 'to_out.0' : processor[2]}`;
    entry = processor[3];
    style = 'diffusers';
  } else {
    const suffix = DOTTED_SUFFIXES.find((s) => key.endsWith(`.${s}`));
    if (!suffix) return { reason: 'no known LoRA entry at the end of the name' };
    module = key.slice(0, key.length - suffix.length - 1);
    entry = DOTTED_ENTRIES[suffix];
    if (DIFFUSERS_STYLE.has(suffix)) style = 'diffusers';
  }
  const placed = placeDottedModule(module.replace(/^base_model\.model\./, ''));
  if (!placed) return { reason: 'the module is not in a Stable Diffusion UNet or text encoder' };
  return { module, ...placed, style: placed.omi ? 'omi' : style, entry };
}

function placeDottedModule(
  module: string,
): { component: LoraComponent; path: string; firstEncoder: boolean; omi: boolean } | undefined {
  const prefixes: [RegExp, LoraComponent, boolean, boolean][] = [
    [/^unet\./, 'unet', false, false],
    [/^(model\.)?diffusion_model\./, 'unet', false, false],
    [/^text_encoder_2\./, 'te2', false, false],
    [/^text_encoder\./, 'te', true, false],
    [/^clip_g\.(transformer\.)?/, 'te2', false, true],
    [/^clip_l\.(transformer\.)?/, 'te', true, true],
  ];
  for (const [re, component, firstEncoder, omi] of prefixes) {
    const m = re.exec(module);
    if (m) return { component, path: underscored(module.slice(m[0].length)), firstEncoder, omi };
  }
  if (UNET_ROOT.test(`${module}.`)) return { component: 'unet', path: underscored(module), firstEncoder: false, omi: false };
  if (module.startsWith('text_model.')) return { component: 'te', path: underscored(module), firstEncoder: true, omi: false };
  return undefined;
}

/** kohya's spelling of a module path. */
export function underscored(path: string): string {
  return path.replaceAll('.', '_');
}

/**
 * Lists names once, grouped by their shape with index numbers replaced by N ("…_layers_N_self_attn_q_proj ×12"),
 * so a thousand unmatched keys read as a few lines.
 */
export function summariseNames(names: readonly string[], maxGroups = 8): string {
  const groups = new Map<string, number>();
  for (const n of names) {
    // Only whole path segments: te2 and attn1 stay, the 11 of layers_11_ does not.
    const pattern = n.replace(/(?<=[_.])\d+(?=[_.]|$)/g, 'N');
    groups.set(pattern, (groups.get(pattern) ?? 0) + 1);
  }
  const sorted = [...groups].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, maxGroups).map(([p, c]) => (c > 1 ? `${p} ×${c}` : p));
  if (sorted.length > maxGroups) shown.push(`and ${sorted.length - maxGroups} more kinds`);
  return shown.join(', ');
}
