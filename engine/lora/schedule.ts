/**
 * Step schedules for strengths, SD.Next / loractl syntax: `weight@position` items separated by `,` or `;`
 * (`~` works as `@`), e.g. `0.1@1,0.6@6` or `0.2@0,1@0.5`. Between positions the weight is interpolated
 * linearly; before the first and after the last it stays at that weight. When every position is ≤ 1 the
 * positions are fractions of the run, otherwise step numbers counted from 1.
 */

export interface SchedulePoint {
  readonly at: number;
  readonly weight: number;
}

/** A strength: a number, or a schedule over the sampling steps. */
export type Strength = number | { readonly schedule: readonly SchedulePoint[] };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A finite decimal number, or undefined (no hex, no empty string, no Infinity). */
export function parseNumber(text: string): number | undefined {
  const t = text.trim();
  return NUMBER.test(t) ? Number(t) : undefined;
}

/** Parses a strength value; throws a plain Error with the reason (the caller names the spec and part). */
export function parseStrength(text: string): Strength {
  const plain = parseNumber(text);
  if (plain !== undefined) return plain;
  const items = text.split(/[,;]/).map((s) => s.trim());
  if (!/[@~]/.test(items[0])) {
    throw new Error(
      items.length > 1
        ? 'is a list of numbers, not a strength; per-block values go in blocks=…, and a step schedule is weight@step items like 0.2@1,1@10'
        : 'is not a number',
    );
  }
  const points = items.map((item, i): SchedulePoint => {
    const [w, at, extra] = item.split(/[@~]/);
    const weight = parseNumber(w ?? '');
    // An item without a position means "at the end" (SD.Next).
    const position = at === undefined ? 1 : parseNumber(at);
    if (weight === undefined || position === undefined || position < 0 || extra !== undefined) {
      throw new Error(`has a bad schedule item "${item}" (item ${i + 1}); write weight@position, e.g. 0.5@10`);
    }
    return { at: position, weight };
  });
  // sort is stable: items at the same position keep their order (a jump at that position).
  return { schedule: points.sort((a, b) => a.at - b.at) };
}

/**
 * The strength at a sampling step (0-based) of a run of `totalSteps`. Fractions map step 0 to 0 and the
 * last step to 1; step numbers are 1-based, so `@1` is the first step.
 */
export function strengthAtStep(strength: Strength, step: number, totalSteps: number): number {
  if (typeof strength === 'number') return strength;
  const points = strength.schedule;
  const fractions = points[points.length - 1].at <= 1;
  const t = fractions ? (totalSteps > 1 ? step / (totalSteps - 1) : 0) : step + 1;
  let i = -1;
  while (i + 1 < points.length && points[i + 1].at <= t) i++;
  if (i < 0) return points[0].weight;
  if (i === points.length - 1) return points[i].weight;
  const [a, b] = [points[i], points[i + 1]];
  return a.weight + ((b.weight - a.weight) * (t - a.at)) / (b.at - a.at);
}

/** The text form of a strength (for logs and metadata). */
export function formatStrength(strength: Strength): string {
  return typeof strength === 'number' ? String(strength) : strength.schedule.map((p) => `${p.weight}@${p.at}`).join(',');
}
