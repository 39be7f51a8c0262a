/** Builds the adapters of one module for the model tensors it changes (its weight and, for some, its bias). */
import type { ModuleKind } from '../families.ts';
import { ShapeError, type AdditiveAdapter, type Adapter, type ModuleData } from './adapter.ts';
import { doraAdapter } from './dora.ts';
import { storedDelta } from './full.ts';
import { gloraAdapter } from './glora.ts';
import { ia3Adapter } from './ia3.ts';
import { lohaAdapter } from './loha.ts';
import { lokrAdapter } from './lokr.ts';
import { loraAdapter } from './lora.ts';
import { boftAdapter, oftAdapter } from './oft.ts';

export interface ModuleAdapters {
  readonly weight?: Adapter;
  readonly bias?: AdditiveAdapter;
}

/**
 * `weightShape` / `biasShape` are the model's tensors (undefined where the layer has none). Throws
 * ShapeError when the module's tensors do not fit them.
 */
export function moduleAdapters(
  kind: ModuleKind,
  d: ModuleData,
  weightShape: readonly number[] | undefined,
  biasShape: readonly number[] | undefined,
): ModuleAdapters {
  const needWeight = (): readonly number[] => {
    if (!weightShape) throw new ShapeError(`${d.name}: the model layer has no weight to change`);
    return weightShape;
  };
  const bias = (entry: string, rank?: number): AdditiveAdapter | undefined => {
    if (!d.has(entry)) return undefined;
    if (!biasShape) throw new ShapeError(`${d.name}: has a bias change (${entry}) but the model layer has no bias`);
    return storedDelta(d, entry, biasShape, rank);
  };
  const withDora = (inner: AdditiveAdapter): Adapter => (kind.dora ? doraAdapter(d, inner, needWeight()) : inner);
  switch (kind.family) {
    case 'lora':
    case 'locon': {
      if (d.has('up_bias') && d.has('diff_b')) throw new ShapeError(`${d.name}: has both lora_B.bias and diff_b`);
      return { weight: withDora(loraAdapter(d, needWeight())), bias: bias('up_bias', d.shape('down')[0]) ?? bias('diff_b') };
    }
    case 'loha':
      return { weight: withDora(lohaAdapter(d, needWeight())) };
    case 'lokr':
      return { weight: withDora(lokrAdapter(d, needWeight())) };
    case 'glora':
      return { weight: gloraAdapter(d, needWeight()) };
    case 'ia3':
      return { weight: ia3Adapter(d, needWeight()) };
    case 'oft':
      return { weight: oftAdapter(d, needWeight()) };
    case 'boft':
      return { weight: boftAdapter(d, needWeight()) };
    case 'full':
      return { weight: d.has('diff') ? storedDelta(d, 'diff', needWeight()) : undefined, bias: bias('diff_b') };
    case 'norm':
      return { weight: d.has('w_norm') ? storedDelta(d, 'w_norm', needWeight()) : undefined, bias: bias('b_norm') };
  }
}

export { ShapeError, type AdditiveAdapter, type Adapter, type LowRank, type ModuleData } from './adapter.ts';
