/**
 * JSON in and out of HTTP without losing 64-bit integers: bodies are read as raw bytes and parsed with the
 * lossless parser; responses are written with `stringifyJson` (or assembled from stored JSON text).
 */
import type { Request, Response } from 'express';
import { InvalidInputError } from '../../engine/errors.ts';
import { isJsonObject, parseJson, stringifyJson, type Json } from '../../engine/json.ts';

export function sendJson(res: Response, value: unknown, status = 200): void {
  res.status(status).type('application/json').send(stringifyJson(value));
}

export function sendJsonText(res: Response, text: string): void {
  res.status(200).type('application/json').send(text);
}

/** The request body as JSON (undefined when empty). Content-Type is not required, as ComfyUI's clients often omit it. */
export function jsonBody(req: Request): Json | undefined {
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) return undefined;
  return parseJson(body.toString('utf8'), 'the request body');
}

/** The JSON body if it parses as an object, else undefined (for routes where a bad body means "no options"). */
export function optionalObjectBody(req: Request): Record<string, Json> | undefined {
  try {
    const body = jsonBody(req);
    return isJsonObject(body) ? body : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON body, which must be an object. */
export function objectBody(req: Request): Record<string, Json> {
  const body = jsonBody(req);
  if (!isJsonObject(body)) throw new InvalidInputError('the request body must be a JSON object');
  return body;
}

/** A list of strings from a body field, or a clear error. */
export function stringList(value: Json | undefined, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new InvalidInputError(`"${field}" must be a list of prompt ids (strings)`);
  return value as string[];
}
