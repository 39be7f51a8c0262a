/**
 * A small `multipart/form-data` reader for uploads (the body is already in memory, its size capped by the
 * upload limit): fields by name, files with their file name and content type.
 */
import { InvalidInputError } from '../../engine/errors.ts';

export interface FormPart {
  readonly name: string;
  readonly filename?: string;
  readonly contentType?: string;
  readonly data: Buffer;
}

export function multipartBoundary(contentType: string | undefined): string {
  const m = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  if (!m) throw new InvalidInputError('the request must be multipart/form-data with a boundary (send the file as a form field)');
  return m[1] ?? m[2];
}

/** The value of a header parameter such as `name="image"` (quoted or not). */
function param(header: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, 'i').exec(header);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2].trim();
}

export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let start = body.indexOf(delimiter);
  if (start < 0) throw new InvalidInputError('the multipart body has no part with the declared boundary');
  for (;;) {
    start += delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const end = body.indexOf(delimiter, start);
    if (end < 0) throw new InvalidInputError('the multipart body ends before its closing boundary (was the upload cut off?)');
    // Each part: CRLF, headers, CRLF CRLF, data, CRLF, then the next delimiter.
    const part = body.subarray(start + 2, end - 2);
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) throw new InvalidInputError('a multipart part has no header/body separator');
    const headers = new Map<string, string>();
    for (const line of part.subarray(0, split).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const disposition = headers.get('content-disposition') ?? '';
    const name = param(disposition, 'name');
    if (!/^form-data/i.test(disposition) || name === undefined) throw new InvalidInputError('a multipart part has no Content-Disposition: form-data name');
    parts.push({ name, filename: param(disposition, 'filename'), contentType: headers.get('content-type'), data: part.subarray(split + 4) });
    start = end;
  }
  return parts;
}
