/**
 * A1111's `parameters` text ("infotext"): the prompt, an optional "Negative prompt:" line, and a last line of
 * `Key: value` pairs joined by ", " (modules/processing.py create_infotext). Written so A1111, Civitai and
 * ComfyUI's A1111 import read our images' settings.
 */
import { a1111SamplerName, a1111ScheduleType } from './a1111-names.ts';

export interface A1111Generation {
  positive: string;
  negative: string;
  steps: number;
  /** ComfyUI sampler and scheduler names; written under A1111's display names. */
  sampler: string;
  scheduler: string;
  cfg: number;
  seed: bigint;
  width: number;
  height: number;
  model?: string;
  /** A1111's short hash: the first 10 hex digits of the file's SHA-256. */
  modelHash?: string;
  /** Written only below 1: a full denoise is plain txt2img, for which A1111 writes none. */
  denoise?: number;
  /** A1111's convention (2 = ComfyUI's CLIPSetLastLayer -2); written only above 1, as A1111 does. */
  clipSkip?: number;
  /** LoRA name → short hash. */
  loraHashes?: Record<string, string>;
  version?: string;
}

export interface A1111Parameters {
  positive: string;
  negative: string;
  /** The last line's pairs, keys as written ("Steps", "CFG scale", ...), quoted values unquoted. */
  options: Record<string, string>;
}

const NEGATIVE_MARK = '\nNegative prompt:';
const STEPS_MARK = '\nSteps:';

/** A1111's quote(): values with a comma, colon or newline become JSON strings (non-ASCII kept). */
function quote(value: string): string {
  return /[,:\n]/.test(value) ? JSON.stringify(value) : value;
}

/** The infotext A1111 would write for these settings. */
export function formatA1111Parameters(gen: A1111Generation): string {
  // A1111 drops separators from LoRA names so the list stays parseable.
  const loras = Object.entries(gen.loraHashes ?? {}).map(([name, hash]) => `${name.replace(/[:,]/g, '')}: ${hash}`);
  const fields: [string, string | number | bigint | undefined][] = [
    ['Steps', gen.steps],
    ['Sampler', a1111SamplerName(gen.sampler)],
    ['Schedule type', a1111ScheduleType(gen.scheduler)],
    ['CFG scale', gen.cfg],
    ['Seed', gen.seed],
    ['Size', `${gen.width}x${gen.height}`],
    ['Model hash', gen.modelHash],
    ['Model', gen.model],
    ['Denoising strength', gen.denoise !== undefined && gen.denoise < 1 ? gen.denoise : undefined],
    ['Clip skip', gen.clipSkip !== undefined && gen.clipSkip > 1 ? gen.clipSkip : undefined],
    ['Lora hashes', loras.length > 0 ? loras.join(', ') : undefined],
    ['Version', gen.version],
  ];
  const settings = fields
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}: ${quote(String(value))}`)
    .join(', ');
  const negative = gen.negative ? `${NEGATIVE_MARK} ${gen.negative}` : '';
  return `${gen.positive}${negative}\n${settings}`.trim();
}

/** Index just past the closing quote of the JSON string starting at `start`, or -1 when it never closes. */
function endOfQuoted(line: string, start: number): number {
  for (let i = start + 1; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === '"') return i + 1;
  }
  return -1;
}

function parseSettingsLine(line: string): Record<string, string> {
  const options = new Map<string, string>();
  let pos = 0;
  while (pos < line.length) {
    const colon = line.indexOf(':', pos);
    if (colon < 0) break;
    // Text before the last comma is a bare flag A1111 writes without a value; it has no pair to keep.
    const key = line.slice(pos, colon).split(',').at(-1)!.trim();
    let start = colon + 1;
    while (line[start] === ' ') start++;
    const quotedEnd = line[start] === '"' ? endOfQuoted(line, start) : -1;
    let value: string;
    if (quotedEnd > 0) {
      const literal = line.slice(start, quotedEnd);
      try {
        value = JSON.parse(literal) as string;
      } catch {
        value = literal;
      }
      const comma = line.indexOf(',', quotedEnd);
      pos = comma < 0 ? line.length : comma + 1;
    } else {
      const comma = line.indexOf(',', start);
      value = line.slice(start, comma < 0 ? line.length : comma).trim();
      pos = comma < 0 ? line.length : comma + 1;
    }
    if (key) options.set(key, value);
  }
  return Object.fromEntries(options);
}

/**
 * Splits an infotext as ComfyUI's frontend importA1111 does: settings from the last "\nSteps:" line, the negative
 * prompt after the last "\nNegative prompt:" before it, both prompts trimmed. A text without a settings line is
 * all prompt. Unlike that importer, a text may start with either marker (A1111 trims empty prompts away) and
 * quoted values (containing ", " or ":") are kept whole.
 */
export function parseA1111Parameters(text: string): A1111Parameters {
  const padded = `\n${text}`;
  const stepsAt = padded.lastIndexOf(STEPS_MARK);
  const prompts = stepsAt < 0 ? padded : padded.slice(0, stepsAt);
  const negativeAt = prompts.lastIndexOf(NEGATIVE_MARK);
  return {
    positive: (negativeAt < 0 ? prompts : prompts.slice(0, negativeAt)).trim(),
    negative: negativeAt < 0 ? '' : prompts.slice(negativeAt + NEGATIVE_MARK.length).trim(),
    options: stepsAt < 0 ? {} : parseSettingsLine(padded.slice(stepsAt + 1).split('\n')[0]),
  };
}
