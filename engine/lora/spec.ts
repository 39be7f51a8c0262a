/**
 * LoRA specs: the text inside a prompt tag after `lora:` (and of `--lora` flags and loader nodes),
 *   NAME_OR_PATH[:STRENGTH][:te=…][:te1=…][:te2=…][:unet=…][:in=…][:mid=…][:out=…][:blocks=…]
 * and the strength each model weight gets from it. Defaulting chain (README "Strengths"):
 *   te   = te=   ?? STRENGTH ?? 1          te1 / te2 = te1= / te2= ?? te
 *   unet = unet= ?? STRENGTH ?? te         in / mid / out = in= / mid= / out= ?? unet
 * i.e. SD.Next's chain (unet falls back to te) except that a positional STRENGTH is never ignored:
 * `x:1:te=0` keeps the UNet at 1 instead of dropping the LoRA. No LoRA is ever skipped for being 0.
 * `blocks=` multiplies each UNet block (IN00…, M00, OUT00…) by its own factor.
 */
import { LoraSpecError } from '../errors.ts';
import { formatStrength, parseNumber, parseStrength, strengthAtStep, type Strength } from './schedule.ts';
import type { TargetPlace } from './targets.ts';

export const STRENGTH_OPTIONS = ['te', 'te1', 'te2', 'unet', 'in', 'mid', 'out'] as const;
type StrengthOption = (typeof STRENGTH_OPTIONS)[number];

export interface LoraSpec {
  /** The spec as written (for messages). */
  readonly text: string;
  readonly name: string;
  /** The positional strength. */
  readonly strength?: Strength;
  readonly options: Readonly<Partial<Record<StrengthOption, Strength>>>;
  /** Per-UNet-block factors, with an optional leading text-encoder (BASE) factor. */
  readonly blocks?: readonly number[];
}

export function parseLoraSpec(text: string): LoraSpec {
  const parts = text.split(':');
  // A Windows path's drive letter is not a separator: C:\loras\x.safetensors.
  if (parts.length > 1 && /^\s*[a-z]$/i.test(parts[0]) && /^[\\/]/.test(parts[1])) parts.splice(0, 2, `${parts[0]}:${parts[1]}`);
  const name = parts[0].trim();
  if (!name) throw new LoraSpecError(text, '', 'has no LoRA name; write NAME[:STRENGTH][:te=…][:unet=…]');
  let strength: Strength | undefined;
  let blocks: number[] | undefined;
  const options: Partial<Record<StrengthOption, Strength>> = {};
  const seen = new Set<string>();
  for (const raw of parts.slice(1)) {
    const part = raw.trim();
    if (!part) throw new LoraSpecError(text, raw, 'is an empty part (two colons in a row?)');
    const eq = part.split('=');
    if (eq.length > 2) throw new LoraSpecError(text, part, 'has more than one "="');
    if (eq.length === 1) {
      if (strength !== undefined) {
        throw new LoraSpecError(text, part, 'is a second positional value; only one strength may follow the name (write unet=… or te=… for parts)');
      }
      strength = strengthOf(text, part, part);
      continue;
    }
    const key = eq[0].trim().toLowerCase();
    if (seen.has(key)) throw new LoraSpecError(text, part, `sets ${key} twice`);
    seen.add(key);
    if (key === 'blocks') blocks = blockList(text, part, eq[1]);
    else if ((STRENGTH_OPTIONS as readonly string[]).includes(key)) options[key as StrengthOption] = strengthOf(text, part, eq[1]);
    else throw new LoraSpecError(text, part, `is not an option; known: ${[...STRENGTH_OPTIONS, 'blocks'].join(', ')}`);
  }
  return { text, name, strength, options, blocks };
}

function strengthOf(spec: string, part: string, value: string): Strength {
  try {
    return parseStrength(value);
  } catch (err) {
    throw new LoraSpecError(spec, part, (err as Error).message);
  }
}

function blockList(spec: string, part: string, value: string): number[] {
  const items = value.split(/[,\s]+/).filter(Boolean);
  if (items.length === 0) throw new LoraSpecError(spec, part, 'lists no values');
  return items.map((item, i) => {
    const v = parseNumber(item);
    if (v === undefined) throw new LoraSpecError(spec, part, `has a bad value "${item}" at position ${i + 1} (per-block values are plain numbers)`);
    return v;
  });
}

/** The strengths after the defaulting chain. */
export interface ResolvedStrengths {
  readonly te: Strength;
  readonly te1: Strength;
  readonly te2: Strength;
  readonly unet: Strength;
  readonly in: Strength;
  readonly mid: Strength;
  readonly out: Strength;
}

export function resolveStrengths(spec: LoraSpec): ResolvedStrengths {
  const o = spec.options;
  const te = o.te ?? spec.strength ?? 1;
  const unet = o.unet ?? spec.strength ?? te;
  return { te, te1: o.te1 ?? te, te2: o.te2 ?? te, unet, in: o.in ?? unet, mid: o.mid ?? unet, out: o.out ?? unet };
}

/**
 * Checks a `blocks=` list against the UNet's block names (targets.ts unetBlockNames): one value per block,
 * or one more with a leading text-encoder (BASE) value as LoRA Block Weight writes it.
 */
export function checkBlocks(spec: LoraSpec, blockNames: readonly string[], modelName = 'this UNet'): void {
  if (!spec.blocks) return;
  const n = blockNames.length;
  if (n === 0) throw new LoraSpecError(spec.text, 'blocks=', `cannot be used: the block layout of ${modelName} is unknown`);
  if (spec.blocks.length !== n && spec.blocks.length !== n + 1) {
    const inBlocks = blockNames.filter((b) => b.startsWith('IN'));
    throw new LoraSpecError(
      spec.text,
      'blocks=',
      `has ${spec.blocks.length} values; ${modelName} has ${n} blocks (${inBlocks[0]}–${inBlocks[inBlocks.length - 1]}, M00, ` +
        `${blockNames[n - inBlocks.length]}–${blockNames[n - 1]}): give ${n} values, or ${n + 1} starting with the text-encoder (BASE) value`,
    );
  }
}

/** Where a weight sits, plus the UNet's block count (needed to read a `blocks=` list). */
export interface StrengthTarget extends TargetPlace {
  readonly blockCount?: number;
}

/** The strength of one LoRA on one model weight at a sampling step (0-based) of `totalSteps`. */
export function strengthAt(spec: LoraSpec, target: StrengthTarget, step: number, totalSteps: number): number {
  const s = resolveStrengths(spec);
  const blocks = spec.blocks;
  const withBase = blocks !== undefined && target.blockCount !== undefined && blocks.length === target.blockCount + 1;
  if (target.component !== 'unet') {
    const value = strengthAtStep(s[target.component], step, totalSteps);
    return withBase ? value * blocks[0] : value;
  }
  const value = strengthAtStep(target.group ? s[target.group] : s.unet, step, totalSteps);
  if (!blocks) return value;
  if (target.block === undefined || target.blockCount === undefined || (blocks.length !== target.blockCount && !withBase)) {
    throw new LoraSpecError(spec.text, 'blocks=', 'does not fit the model\'s UNet blocks');
  }
  return value * blocks[target.block + (withBase ? 1 : 0)];
}

/** The canonical text of a spec (logs, metadata). */
export function formatLoraSpec(spec: LoraSpec): string {
  const parts = [spec.name];
  if (spec.strength !== undefined) parts.push(formatStrength(spec.strength));
  for (const key of STRENGTH_OPTIONS) {
    const v = spec.options[key];
    if (v !== undefined) parts.push(`${key}=${formatStrength(v)}`);
  }
  if (spec.blocks) parts.push(`blocks=${spec.blocks.join(',')}`);
  return parts.join(':');
}
