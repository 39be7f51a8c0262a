import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { FileFormatError, InvalidInputError } from '../../engine/errors.ts';
import { comfyPngText, decodeImage, encodePng, escapeJsonNonAscii, readPngText, type Image8 } from '../../engine/image/index.ts';
import { buildChunk, walkPngChunks } from '../../engine/image/png-chunks.ts';

/** Deterministic, varied pixels (a small LCG), alpha included when asked. */
function testImage(width: number, height: number, channels: 3 | 4): Image8 {
  const data = new Uint8Array(width * height * channels);
  let state = 12345;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return { width, height, channels, data };
}

function chunkTypes(png: Uint8Array): string[] {
  return [...walkPngChunks(png, 'test')].map((c) => c.type);
}

/** `png` with `chunks` inserted just before IEND (the last 12 bytes). */
function withChunksAtEnd(png: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([png.subarray(0, png.length - 12), ...chunks, png.subarray(png.length - 12)]);
}

function expectFileError(run: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FileFormatError);
  expect((caught as Error).message).toMatch(message);
}

describe('PNG encoding', () => {
  it.each([3, 4] as const)('round-trips %i-channel pixels exactly', async (channels) => {
    const image = testImage(37, 23, channels);
    const decoded = await decodeImage(await encodePng(image));
    expect(decoded.width).toBe(37);
    expect(decoded.height).toBe(23);
    expect(decoded.channels).toBe(channels);
    expect(Buffer.from(decoded.data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('writes text chunks right after IHDR, tEXt for ASCII and iTXt otherwise, and reads them back', async () => {
    const bigJson = JSON.stringify({ nodes: Array.from({ length: 20000 }, (_, i) => ({ id: i, text: `node ${i}` })) });
    const text = {
      ascii: 'plain text, with "quotes"\nand a second line',
      latin1: 'café ÿ',
      unicode: '日本語 🎨',
      workflow: bigJson,
    };
    const png = await encodePng(testImage(8, 8, 3), text);
    expect(chunkTypes(png)).toEqual(['IHDR', 'tEXt', 'iTXt', 'iTXt', 'tEXt', 'pHYs', 'IDAT', 'IEND']);
    expect(readPngText(png)).toEqual(text);
    // sharp (libpng) only accepts chunks whose CRCs match and sees them before IDAT.
    const comments = (await sharp(png).metadata()).comments ?? [];
    expect(Object.fromEntries(comments.map((c) => [c.keyword, c.text]))).toEqual(text);
  });

  it('gives byte-identical output for the same input', async () => {
    const image = testImage(64, 32, 4);
    const first = await encodePng(image, { prompt: '{"1": {}}' });
    const second = await encodePng({ ...image, data: image.data.slice() }, { prompt: '{"1": {}}' });
    expect(first.equals(second)).toBe(true);
    expect(first.equals(await encodePng(image, { prompt: '{"2": {}}' }))).toBe(false);
  });

  it('refuses keywords the PNG spec does not allow', async () => {
    for (const key of ['', 'k'.repeat(80), 'a\0b', 'ключ']) {
      await expect(encodePng(testImage(2, 2, 3), { [key]: 'x' })).rejects.toBeInstanceOf(InvalidInputError);
    }
  });
});

describe('ComfyUI text chunks', () => {
  it("escapes non-ASCII as Python's json.dumps does", () => {
    // json.dumps({"a": "é😀\x7f"}) in Python, with the caller's compact separators.
    expect(escapeJsonNonAscii('{"a":"é😀\u007f"}')).toBe('{"a":"\\u00e9\\ud83d\\ude00\\u007f"}');
    const json = JSON.stringify({ text: 'Ünïcödé ✓ 𝄞', seed: 1 });
    expect(JSON.parse(escapeJsonNonAscii(json))).toEqual(JSON.parse(json));
  });

  it('serialises prompt and workflow as ASCII tEXt and keeps parameters as is', async () => {
    const prompt = '{"3":{"inputs":{"seed":18446744073709551615,"text":"chat noir"}}}';
    const text = comfyPngText({ prompt, workflow: '{"title":"café"}', parameters: 'café\nSteps: 20' });
    expect(text).toEqual({
      prompt,
      workflow: '{"title":"caf\\u00e9"}',
      parameters: 'café\nSteps: 20',
    });
    const png = await encodePng(testImage(4, 4, 3), text);
    expect(chunkTypes(png).slice(1, 4)).toEqual(['tEXt', 'tEXt', 'iTXt']);
    expect(readPngText(png)).toEqual(text);
    expect(comfyPngText({ parameters: 'x' })).toEqual({ parameters: 'x' });
  });
});

describe('PNG text reading', () => {
  it('reads zTXt and compressed iTXt chunks, also after IDAT', async () => {
    const png = await encodePng(testImage(4, 4, 3), { before: 'tEXt before IDAT' });
    const ztxt = buildChunk('zTXt', Buffer.concat([Buffer.from('latin\0\0', 'latin1'), deflateSync(Buffer.from('naïve', 'latin1'))]));
    const itxt = buildChunk(
      'iTXt',
      Buffer.concat([Buffer.from('utf\0\x01\0en\0Übersetzt\0', 'latin1'), deflateSync(Buffer.from('数字 ✓', 'utf8'))]),
    );
    const raw = buildChunk('tEXt', Buffer.from('raw latin\0\xe9\xff', 'latin1'));
    const file = withChunksAtEnd(png, ztxt, itxt, raw);
    expect(chunkTypes(file).slice(-4)).toEqual(['zTXt', 'iTXt', 'tEXt', 'IEND']);
    expect(readPngText(file)).toEqual({ before: 'tEXt before IDAT', latin: 'naïve', utf: '数字 ✓', 'raw latin': 'éÿ' });
  });

  it('keeps the last of repeated keywords and stores "__proto__" as a plain key', async () => {
    const png = await encodePng(testImage(2, 2, 3), { a: '1' });
    const text = readPngText(withChunksAtEnd(png, buildChunk('tEXt', Buffer.from('a\x002')), buildChunk('tEXt', Buffer.from('__proto__\0p'))));
    expect(Object.keys(text)).toEqual(['a', '__proto__']);
    expect(text.a).toBe('2');
    expect(Object.getPrototypeOf(text)).toBe(Object.prototype);
  });

  it('reads what it can from a file that ends cleanly without IEND', async () => {
    const png = await encodePng(testImage(2, 2, 3), { k: 'v' });
    expect(readPngText(png.subarray(0, png.length - 12))).toEqual({ k: 'v' });
  });

  it('gives typed errors naming the source for non-PNG and corrupt structure', async () => {
    const png = await encodePng(testImage(4, 4, 3), { key: 'value' });
    expectFileError(() => readPngText(Buffer.from('GIF89a not a png'), 'in.gif'), /^in\.gif: not a PNG/);
    expectFileError(() => readPngText(new Uint8Array(0), 'empty.png'), /empty\.png: not a PNG/);

    const idat = [...walkPngChunks(png, 't')].find((c) => c.type === 'IDAT')!;
    const hugeLength = Buffer.from(png);
    hugeLength.writeUInt32BE(0xfffffff0, idat.offset);
    expectFileError(() => readPngText(hugeLength, 'huge.png'), /huge\.png: corrupt PNG: chunk IDAT claims 4294967280 bytes/);

    expectFileError(() => readPngText(png.subarray(0, idat.offset + 20), 'cut.png'), /cut\.png: corrupt PNG: chunk IDAT claims/);
    expectFileError(() => readPngText(png.subarray(0, idat.offset + 5), 'cut.png'), /header is cut off/);

    const badType = Buffer.from(png);
    badType.write('I4AT', idat.offset + 4, 'latin1');
    expectFileError(() => readPngText(badType), /chunk type is not four letters/);

    const noIhdr = Buffer.concat([png.subarray(0, 8), png.subarray(33)]);
    expectFileError(() => readPngText(noIhdr), /first chunk is tEXt, not IHDR/);
  });

  it('treats a text chunk with a bad CRC as an error, but not a bad CRC elsewhere', async () => {
    const png = await encodePng(testImage(4, 4, 3), { key: 'value' });
    const [textChunk, idat] = [...walkPngChunks(png, 't')].filter((c) => c.type === 'tEXt' || c.type === 'IDAT');
    const badText = Buffer.from(png);
    badText[textChunk.offset + 8 + 4] ^= 0x01; // one bit of the text, CRC unchanged
    expectFileError(() => readPngText(badText, 'flip.png'), /flip\.png: PNG tEXt chunk at byte 33 is unreadable: its CRC does not match/);

    const badIdatCrc = Buffer.from(png);
    badIdatCrc[idat.offset + 8 + idat.data.length] ^= 0xff;
    expect(readPngText(badIdatCrc)).toEqual({ key: 'value' });
  });

  it('refuses malformed text chunks and compressed text that inflates too far', async () => {
    const png = await encodePng(testImage(2, 2, 3));
    const read = (...chunks: Buffer[]) => () => readPngText(withChunksAtEnd(png, ...chunks), 'x.png');
    expectFileError(read(buildChunk('tEXt', Buffer.from('no separator'))), /tEXt chunk .* no NUL after its keyword/);
    expectFileError(read(buildChunk('iTXt', Buffer.from('k\0\0\0en'))), /iTXt header is incomplete/);
    expectFileError(read(buildChunk('zTXt', Buffer.from('k\0\x01xyz', 'latin1'))), /compression method 1 is unknown/);
    expectFileError(read(buildChunk('zTXt', Buffer.from('k\0\0not zlib', 'latin1'))), /compressed text is corrupt/);
    // 40 MiB of zeros deflate to 180 KiB: one is allowed, two exceed the 64 MiB per-file budget.
    const zeros = deflateSync(Buffer.alloc(40 << 20), { level: 1 });
    const bomb = buildChunk('zTXt', Buffer.concat([Buffer.from('k\0\0', 'latin1'), zeros]));
    expect(bomb.length).toBeLessThan(200_000);
    expect(readPngText(withChunksAtEnd(png, bomb)).k).toHaveLength(40 << 20);
    expectFileError(read(bomb, bomb), /inflates past the 64 MiB limit/);
  });
});

describe('decodeImage', () => {
  it('decodes JPEG to RGB and grey+alpha PNG to RGBA', async () => {
    const jpeg = await sharp(testImage(16, 8, 3).data, { raw: { width: 16, height: 8, channels: 3 } }).jpeg().toBuffer();
    const fromJpeg = await decodeImage(jpeg, 'photo.jpg');
    expect([fromJpeg.width, fromJpeg.height, fromJpeg.channels, fromJpeg.data.length]).toEqual([16, 8, 3, 16 * 8 * 3]);

    const greyAlpha = new Uint8Array([10, 0, 200, 255, 30, 128, 90, 64]);
    const png = await sharp(greyAlpha, { raw: { width: 2, height: 2, channels: 2 } }).png().toBuffer();
    const rgba = await decodeImage(png);
    expect(rgba.channels).toBe(4);
    expect([...rgba.data]).toEqual([10, 10, 10, 0, 200, 200, 200, 255, 30, 30, 30, 128, 90, 90, 90, 64]);
  });

  it('applies EXIF orientation, as LoadImage does', async () => {
    const wide = await sharp(testImage(4, 2, 3).data, { raw: { width: 4, height: 2, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const decoded = await decodeImage(wide);
    expect([decoded.width, decoded.height]).toEqual([2, 4]);
  });

  it('gives a FileFormatError naming the source for undecodable bytes', async () => {
    await expect(decodeImage(Buffer.from('definitely not an image'), 'upload.png')).rejects.toThrow(
      /^upload\.png: cannot decode the image/,
    );
    await expect(decodeImage(Buffer.from('x'))).rejects.toBeInstanceOf(FileFormatError);
  });
});
