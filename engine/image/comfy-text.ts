/** The text chunks ComfyUI's SaveImage writes, serialised as Python's json.dumps would. */

/**
 * Escapes every UTF-16 unit from DEL (0x7f) up in a JSON text as \uXXXX (lower-case hex, surrogates
 * separately), as Python's json.dumps does by default. Safe on any valid JSON: such characters can only occur
 * inside strings.
 */
export function escapeJsonNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface ComfyPngTextInput {
  /** The API-format graph, already serialised (seeds are 64-bit: the caller uses a lossless serialiser). */
  prompt?: string;
  /** The editor graph (extra_pnginfo.workflow), already serialised. */
  workflow?: string;
  /** A1111-style generation parameters, stored as is. */
  parameters?: string;
}

/** Keyword → text for encodePng: `prompt` and `workflow` as ComfyUI writes them, then A1111's `parameters`. */
export function comfyPngText({ prompt, workflow, parameters }: ComfyPngTextInput): Record<string, string> {
  const text: Record<string, string> = {};
  if (prompt !== undefined) text.prompt = escapeJsonNonAscii(prompt);
  if (workflow !== undefined) text.workflow = escapeJsonNonAscii(workflow);
  if (parameters !== undefined) text.parameters = parameters;
  return text;
}
