/**
 * The model side of LoRA key matching, built forward from the checkpoint's own canonical names: every
 * UNet weight answers to its LDM path and its diffusers path, every text-encoder weight to its transformers
 * path (with and without the `text_model.` root), all in kohya spelling. Also where a weight sits for
 * strengths: its component and, in the UNet, its block group and block.
 */
import type { Checkpoint } from '../models/checkpoint.ts';
import { unetLayout, unetLdmToDiffusers, type UNetLayout } from '../models/keymap.ts';
import { underscored, type LoraComponent } from './keys.ts';

export type BlockGroup = 'in' | 'mid' | 'out';

export interface TargetPlace {
  readonly component: LoraComponent;
  /** UNet only. `in` also holds conv_in and the time / label embeddings; `out` also conv_norm_out / conv_out. */
  readonly group?: BlockGroup;
  /** UNet only, when the layout is known: index into the block list IN00…, M00, OUT00… (unetBlockNames). */
  readonly block?: number;
}

/** The UNet's blocks in kohya / LoRA-block-weight order: IN00 … IN(n-1), M00, OUT00 … OUT(n-1). */
export function unetBlockNames(layout: UNetLayout): string[] {
  const perSide = layout.levels * (layout.numResBlocks + 1);
  const pad = (i: number) => String(i).padStart(2, '0');
  return [
    ...Array.from({ length: perSide }, (_, i) => `IN${pad(i)}`),
    'M00',
    ...Array.from({ length: perSide }, (_, i) => `OUT${pad(i)}`),
  ];
}

/**
 * Where a UNet module sits, from its path in LDM or diffusers spelling (dots or underscores). Without a
 * layout only the group is known.
 */
export function unetPlace(path: string, layout?: UNetLayout): TargetPlace {
  const p = underscored(path);
  const stride = layout ? layout.numResBlocks + 1 : 0;
  const perSide = layout ? layout.levels * stride : 0;
  const known = (block: number) => (layout ? block : undefined);
  const place = (group: BlockGroup, block: number): TargetPlace => ({ component: 'unet', group, block: known(block) });
  let m: RegExpExecArray | null;
  if ((m = /^input_blocks_(\d+)_/.exec(p))) return place('in', Number(m[1]));
  if (/^(time_embed|label_emb|conv_in|time_embedding|add_embedding)(_|$)/.test(p)) return place('in', 0);
  if (/^(middle_block|mid_block)_/.test(p)) return place('mid', perSide);
  if ((m = /^output_blocks_(\d+)_/.exec(p))) return place('out', perSide + 1 + Number(m[1]));
  if (/^(out_\d|conv_out|conv_norm_out)(_|$)/.test(p)) return place('out', 2 * perSide);
  if ((m = /^down_blocks_(\d+)_(resnets|attentions)_(\d+)_?/.exec(p))) return place('in', 1 + Number(m[1]) * stride + Number(m[3]));
  if ((m = /^down_blocks_(\d+)_downsamplers_/.exec(p))) return place('in', (Number(m[1]) + 1) * stride);
  if ((m = /^up_blocks_(\d+)_(resnets|attentions)_(\d+)_?/.exec(p))) return place('out', perSide + 1 + Number(m[1]) * stride + Number(m[3]));
  if ((m = /^up_blocks_(\d+)_upsamplers_/.exec(p))) return place('out', perSide + 1 + Number(m[1]) * stride + stride - 1);
  return { component: 'unet' };
}

/** What a LoRA module needs to be looked up: its component and kohya-spelled path. */
export interface ModuleAddress {
  readonly component: LoraComponent;
  readonly path: string;
  readonly firstEncoder: boolean;
}

export class ModelTargets {
  readonly layout: UNetLayout | undefined;
  /** Block names in kohya order (empty without a UNet). */
  readonly blocks: readonly string[];
  /** kohya-spelled address → canonical module path, e.g. `unet/down_blocks_0_attentions_0_proj_in` → `unet.input_blocks.1.1.proj_in`. */
  private readonly index = new Map<string, string>();

  constructor(readonly checkpoint: Checkpoint) {
    const unet = checkpoint.config.unet;
    this.layout = unet ? unetLayout(unet) : undefined;
    this.blocks = this.layout ? unetBlockNames(this.layout) : [];
    for (const name of checkpoint.weights.keys()) {
      const m = /^(unet|te|te1|te2)\.(.+)\.(weight|bias)$/.exec(name);
      if (!m) continue;
      const [, component, path] = m;
      const canonical = `${component}.${path}`;
      this.index.set(`${component}/${underscored(path)}`, canonical);
      if (component === 'unet' && this.layout) {
        const diffusers = unetLdmToDiffusers(path, this.layout);
        if (diffusers) this.index.set(`unet/${underscored(diffusers)}`, canonical);
      } else if (path.startsWith('text_model.')) {
        // transformers ≥ 5.6 dropped the text_model root; some converters followed.
        this.index.set(`${component}/${underscored(path.slice('text_model.'.length))}`, canonical);
      }
    }
  }

  /** The canonical module path a LoRA module changes (weight and bias are `<path>.weight` / `.bias`). */
  resolve(module: ModuleAddress): string | undefined {
    const components = module.firstEncoder && module.component === 'te' ? ['te', 'te1'] : [module.component];
    for (const c of components) {
      const hit = this.index.get(`${c}/${module.path}`);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Component, group and block of a canonical name. */
  place(canonical: string): TargetPlace {
    const dot = canonical.indexOf('.');
    const component = canonical.slice(0, dot) as LoraComponent;
    return component === 'unet' ? unetPlace(canonical.slice(dot + 1), this.layout) : { component };
  }
}
