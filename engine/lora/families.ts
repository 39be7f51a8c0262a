/**
 * Which adapter family a module is, decided from its entries in the order of lycoris_math.md §14: the first
 * family whose required entries are present wins; entries that family does not use are reported, not
 * silently dropped.
 */

export type LoraFamily = 'lora' | 'locon' | 'loha' | 'lokr' | 'glora' | 'ia3' | 'oft' | 'boft' | 'full' | 'norm';

export interface ModuleKind {
  readonly family: LoraFamily;
  /** Weight-decomposed (DoRA): a `dora_scale` or PEFT `lora_magnitude_vector` next to a LoRA/LoHa/LoKr. */
  readonly dora: boolean;
  /** A Tucker/CP core (`lora_mid`, `hada_t1/t2`, `lokr_t2`). */
  readonly tucker: boolean;
  /** Entries present that the family does not use. */
  readonly ignored: readonly string[];
}

type Shape = (entry: string) => readonly number[];

interface FamilyRule {
  readonly matches: (has: (e: string) => boolean) => boolean;
  /** Returns the family, or why the module is incomplete. */
  readonly decide: (has: (e: string) => boolean, shape: Shape) => { family: LoraFamily; tucker: boolean } | string;
  readonly uses: readonly string[];
}

const DORA = ['dora_scale', 'magnitude'];

const RULES: readonly FamilyRule[] = [
  {
    matches: (has) => has('up') || has('down'),
    decide: (has, shape) => {
      if (!has('up') || !has('down')) return `has lora_${has('up') ? 'up' : 'down'} but no lora_${has('up') ? 'down' : 'up'}`;
      const down = shape('down');
      const kernel = down.length === 4 ? down[2] * down[3] : 1;
      return { family: has('mid') || kernel > 1 ? 'locon' : 'lora', tucker: has('mid') };
    },
    uses: ['up', 'down', 'mid', 'alpha', 'scale', 'up_bias', 'diff_b', ...DORA],
  },
  {
    matches: (has) => has('hada_w1_a'),
    decide: (has) => {
      const missing = ['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b'].filter((e) => !has(e));
      if (missing.length) return `LoHa module lacks ${missing.join(', ')}`;
      if (has('hada_t1') !== has('hada_t2')) return 'LoHa module has only one of hada_t1 / hada_t2';
      return { family: 'loha', tucker: has('hada_t1') };
    },
    uses: ['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b', 'hada_t1', 'hada_t2', 'alpha', 'scale', ...DORA],
  },
  {
    matches: (has) => ['lokr_w1', 'lokr_w1_a', 'lokr_w2', 'lokr_w2_a'].some(has),
    decide: (has) => {
      if (!has('lokr_w1') && !(has('lokr_w1_a') && has('lokr_w1_b'))) return 'LoKr module lacks lokr_w1 (or lokr_w1_a + lokr_w1_b)';
      if (!has('lokr_w2') && !(has('lokr_w2_a') && has('lokr_w2_b'))) return 'LoKr module lacks lokr_w2 (or lokr_w2_a + lokr_w2_b)';
      return { family: 'lokr', tucker: has('lokr_t2') && !has('lokr_w2') };
    },
    uses: ['lokr_w1', 'lokr_w1_a', 'lokr_w1_b', 'lokr_w2', 'lokr_w2_a', 'lokr_w2_b', 'lokr_t2', 'alpha', 'scale', ...DORA],
  },
  {
    matches: (has) => has('a1'),
    decide: (has) => {
      const missing = ['a1', 'a2', 'b1', 'b2'].filter((e) => !has(e));
      return missing.length ? `GLoRA module lacks ${missing.map((e) => `${e}.weight`).join(', ')}` : { family: 'glora', tucker: false };
    },
    uses: ['a1', 'a2', 'b1', 'b2', 'alpha'],
  },
  {
    matches: (has) => has('oft_blocks'),
    decide: (_has, shape) => {
      const rank = shape('oft_blocks').length;
      if (rank === 3) return { family: 'oft', tucker: false };
      if (rank === 4) return { family: 'boft', tucker: false };
      return `oft_blocks has ${rank} dimensions; OFT blocks have 3 and BOFT blocks 4`;
    },
    uses: ['oft_blocks', 'alpha', 'rescale'],
  },
  {
    matches: (has) => has('on_input'),
    decide: (has) => (has('ia3') ? { family: 'ia3', tucker: false } : '(IA)^3 module has on_input but no weight'),
    uses: ['ia3', 'on_input'],
  },
  {
    matches: (has) => has('diff') || has('diff_b'),
    decide: () => ({ family: 'full', tucker: false }),
    uses: ['diff', 'diff_b'],
  },
  {
    matches: (has) => has('w_norm') || has('b_norm'),
    decide: () => ({ family: 'norm', tucker: false }),
    uses: ['w_norm', 'b_norm'],
  },
];

/** The family of a module with these entries, or why none fits. */
export function detectModuleKind(entries: ReadonlySet<string>, shape: Shape): ModuleKind | string {
  const has = (e: string) => entries.has(e);
  const rule = RULES.find((r) => r.matches(has));
  if (!rule) return `no LoRA family uses the entries ${[...entries].join(', ')}`;
  const decided = rule.decide(has, shape);
  if (typeof decided === 'string') return decided;
  return {
    ...decided,
    dora: rule.uses.includes('magnitude') && DORA.some(has),
    ignored: [...entries].filter((e) => !rule.uses.includes(e)),
  };
}

const LABELS: Readonly<Record<LoraFamily, string>> = {
  lora: 'LoRA',
  locon: 'LoCon',
  loha: 'LoHa',
  lokr: 'LoKr',
  glora: 'GLoRA',
  ia3: '(IA)^3',
  oft: 'OFT',
  boft: 'BOFT',
  full: 'full diff',
  norm: 'norm',
};

/** A short human name: "LoCon (Tucker)", "DoRA (LoRA)". */
export function familyLabel(kind: Pick<ModuleKind, 'family' | 'dora' | 'tucker'>): string {
  const base = LABELS[kind.family] + (kind.tucker ? ' (Tucker)' : '');
  return kind.dora ? `DoRA (${base})` : base;
}

/** Families whose change does not depend on the weight it is applied to (so several simply add up). */
export function isAdditive(kind: Pick<ModuleKind, 'family' | 'dora'>): boolean {
  return !kind.dora && !['glora', 'ia3', 'oft', 'boft'].includes(kind.family);
}
