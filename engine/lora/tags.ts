/**
 * `<lora:…>` tags in prompts (SD.Next / A1111 syntax; `<lyco:…>` is accepted as an alias). Tags are removed
 * from the prompt; each one's spec is parsed on its own, so one bad tag is reported without losing the others.
 */
import { LoraSpecError } from '../errors.ts';
import { parseLoraSpec, type LoraSpec } from './spec.ts';

export interface PromptLoras {
  /** The prompt without its LoRA tags. */
  readonly prompt: string;
  readonly specs: readonly LoraSpec[];
  /** One error per tag that could not be parsed. */
  readonly errors: readonly LoraSpecError[];
}

const TAG = /<(?:lora|lyco):([^>]*)>/gi;

export function extractLoraTags(prompt: string): PromptLoras {
  const specs: LoraSpec[] = [];
  const errors: LoraSpecError[] = [];
  const cleaned = prompt.replace(TAG, (_tag, body: string) => {
    try {
      specs.push(parseLoraSpec(body));
    } catch (err) {
      if (!(err instanceof LoraSpecError)) throw err;
      errors.push(err);
    }
    return '';
  });
  return { prompt: tidy(cleaned), specs, errors };
}

/** Removes what a deleted tag leaves behind: doubled spaces and commas, and separators at the ends. */
function tidy(prompt: string): string {
  return prompt
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/\s+,/g, ',')
    .replace(/,(\s*,)+/g, ',')
    .replace(/^[\s,]+|[\s,]+$/g, '');
}
