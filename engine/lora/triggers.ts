/**
 * Trigger words of a LoRA, gathered from what trainers and sites leave behind: kohya's `ss_tag_frequency`
 * (its top-level keys are dataset folders like `10_name`, whose name after the repeat count is the trigger),
 * SAI ModelSpec `modelspec.trigger_phrase` / `modelspec.tags`, and a civitai-style sidecar JSON next to the
 * file (`<lora>.json` or `<lora>.civitai.info`) with `trainedWords` at the top or in `modelVersions[]`.
 * The most frequent caption tags are offered separately: they describe the data, they are not triggers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { isJsonObject } from '../json.ts';

export interface TriggerWords {
  /** All trigger words, first seen first, without duplicates (case-insensitive). */
  readonly words: readonly string[];
  /** Where they came from. */
  readonly folders: readonly string[];
  readonly modelspec: readonly string[];
  readonly civitai: readonly string[];
  /** The caption tags of ss_tag_frequency, most frequent first. */
  readonly frequentTags: readonly { readonly tag: string; readonly count: number }[];
}

export function triggerWords(path: string, metadata: Readonly<Record<string, string>>, maxTags = 20): TriggerWords {
  const frequency = parseJsonObject(metadata.ss_tag_frequency);
  // A folder named img or dataset is a dataset root, not a concept (SD.Next drops them too).
  const folders = Object.keys(frequency)
    .map((dir) => dir.replace(/^\d+_/, '').trim())
    .filter((name) => !['img', 'dataset'].includes(name.toLowerCase()));
  const counts = new Map<string, number>();
  for (const tags of Object.values(frequency)) {
    if (typeof tags !== 'object' || tags === null) continue;
    for (const [tag, count] of Object.entries(tags as Record<string, unknown>)) {
      if (typeof count === 'number') counts.set(tag.trim(), (counts.get(tag.trim()) ?? 0) + count);
    }
  }
  const frequentTags = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, maxTags)
    .map(([tag, count]) => ({ tag, count }));
  const modelspec = [...splitWords(metadata['modelspec.trigger_phrase']), ...splitWords(metadata['modelspec.tags'])];
  const civitai = sidecarWords(path);
  return { words: unique([...folders, ...modelspec, ...civitai]), folders: unique(folders), modelspec: unique(modelspec), civitai, frequentTags };
}

/**
 * Appends the words the prompt does not already contain (as a comma-separated item or a substring, any case),
 * joined with ", ".
 */
export function appendTriggerWords(prompt: string, words: readonly string[]): string {
  const lower = prompt.toLowerCase();
  const missing = unique(words).filter((w) => !lower.includes(w.toLowerCase()));
  if (missing.length === 0) return prompt;
  const trimmed = prompt.replace(/[\s,]+$/, '');
  return trimmed ? `${trimmed}, ${missing.join(', ')}` : missing.join(', ');
}

function sidecarWords(path: string): string[] {
  const stem = path.replace(/\.safetensors$/i, '');
  const file = [`${stem}.json`, `${stem}.civitai.info`].find((f) => existsSync(f));
  if (!file) return [];
  const json = parseJsonObject(readFileSync(file, 'utf8'));
  const versions = Array.isArray(json.modelVersions) ? (json.modelVersions as Record<string, unknown>[]) : [];
  // The version that lists this very file, else the first (civitai puts the newest first).
  const name = basename(path).toLowerCase();
  const version =
    versions.find((v) => Array.isArray(v.files) && (v.files as { name?: unknown }[]).some((f) => String(f.name).toLowerCase() === name)) ??
    versions[0];
  const trained = json.trainedWords ?? version?.trainedWords;
  return Array.isArray(trained) ? unique(trained.flatMap((w) => splitWords(String(w)))) : [];
}

function splitWords(text: string | undefined): string[] {
  return (text ?? '').split(',').map((w) => w.trim()).filter(Boolean);
}

function unique(words: readonly string[]): string[] {
  const seen = new Set<string>();
  return words.filter((w) => w && !seen.has(w.toLowerCase()) && seen.add(w.toLowerCase()));
}

function parseJsonObject(text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return isJsonObject(v) ? v : {};
  } catch {
    return {};
  }
}
