import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileFormatError, InvalidInputError, NotFoundError } from '../../engine/errors.ts';
import { mergePair, wordSymbols } from '../../engine/tokenizer/bpe.ts';
import {
  BYTE_ALPHABET,
  ClipTokenizer,
  cleanText,
  clipVocabTokens,
  findTokenizer,
  preTokenize,
  trainClipBpe,
  writeClipTokenizerFolder,
  type Merge,
} from '../../engine/tokenizer/index.ts';
import { repoRoot } from '../helpers/fixtures.ts';

const fixtures = join(repoRoot, 'test', 'fixtures', 'tokenizer');
const corpusFile = join(fixtures, 'captions.txt');
const corpus = readFileSync(corpusFile, 'utf8').split('\n');
const tmp = mkdtempSync(join(tmpdir(), 'lg-tok-'));

function folderContents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

function readVocab(dir: string): Map<string, number> {
  return new Map(Object.entries(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>));
}

/** The simplest possible BPE trainer (recount everything each round), as an oracle for the incremental one. */
function naiveMerges(lines: readonly string[], wanted: number): Merge[] {
  const counts = new Map<string, number>();
  for (const line of lines) for (const piece of preTokenize(cleanText(line))) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  const words = [...counts].map(([piece, count]) => ({ symbols: wordSymbols(piece), count }));
  const known = new Set(clipVocabTokens([]));
  const merges: Merge[] = [];
  while (merges.length < wanted) {
    const pairs = new Map<string, { left: string; right: string; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const id = JSON.stringify([symbols[i], symbols[i + 1]]);
        const pair = pairs.get(id) ?? { left: symbols[i], right: symbols[i + 1], count: 0 };
        pair.count += count;
        pairs.set(id, pair);
      }
    }
    const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const best = [...pairs.values()]
      .filter((p) => !known.has(p.left + p.right))
      .sort((a, b) => b.count - a.count || order(a.left, b.left) || order(a.right, b.right))[0];
    if (!best) break;
    merges.push([best.left, best.right]);
    known.add(best.left + best.right);
    for (const word of words) word.symbols = mergePair(word.symbols, best.left, best.right);
  }
  return merges;
}

describe('tokenizer generator', () => {
  it('learns the same merges as a naive BPE trainer, most frequent pair first', () => {
    const { merges, tokens } = trainClipBpe(corpus, 600);
    expect(merges).toHaveLength(600 - 514);
    expect(tokens).toHaveLength(600);
    expect(merges).toEqual(naiveMerges(corpus, 600 - 514));
  });

  it('is deterministic: the same corpus (in any line order, in another process) gives identical files', () => {
    const first = join(tmp, 'gen-a');
    const reordered = join(tmp, 'gen-b');
    const viaCli = join(tmp, 'gen-cli');
    const a = trainClipBpe(corpus, 560);
    writeClipTokenizerFolder(first, a.tokens, a.merges);
    const b = trainClipBpe([...corpus].reverse(), 560);
    writeClipTokenizerFolder(reordered, b.tokens, b.merges);
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'tools/make-tokenizer.ts', '--corpus', corpusFile, '--vocab-size', '560', '--out', viaCli],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('560 tokens (46 merges)');
    const files = folderContents(first);
    expect(Object.keys(files).sort()).toEqual(['merges.txt', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json']);
    expect(folderContents(reordered)).toEqual(files);
    expect(folderContents(viaCli)).toEqual(files);
  });

  it("writes CLIP's vocabulary layout: bytes, word-final bytes, merges, start, end", () => {
    const dir = join(tmp, 'layout');
    const { tokens, merges } = trainClipBpe(corpus, 540);
    writeClipTokenizerFolder(dir, tokens, merges);
    const vocab = readVocab(dir);
    expect([...vocab.values()].sort((a, b) => a - b)).toEqual([...Array(540).keys()]);
    const byId: string[] = [];
    for (const [token, id] of vocab) byId[id] = token;
    // GPT-2's byte table: printable bytes first ('!' = 0, 'ÿ' = 187), then byte 0 as U+0100, space as 'Ġ' (220).
    expect([byId[0], byId[93], byId[94], byId[187], byId[188], byId[220], byId[255]]).toEqual(['!', '~', '¡', 'ÿ', 'Ā', 'Ġ', 'Ń']);
    expect(byId.slice(0, 256)).toEqual(BYTE_ALPHABET);
    expect(byId.slice(256, 512)).toEqual(BYTE_ALPHABET.map((c) => `${c}</w>`));
    expect(byId.slice(512, 538)).toEqual(merges.map(([l, r]) => l + r));
    expect(byId.slice(538)).toEqual(['<|startoftext|>', '<|endoftext|>']);

    const lines = readFileSync(join(dir, 'merges.txt'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('#version: 0.2');
    expect(lines.slice(1)).toEqual(merges.map(([l, r]) => `${l} ${r}`));
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ tokenizer_class: 'CLIPTokenizer', bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', model_max_length: 77 });
    expect(config.added_tokens_decoder['538'].content).toBe('<|startoftext|>');
    const special = JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8'));
    expect(special.bos_token.content).toBe('<|startoftext|>');
    expect(special.eos_token.content).toBe('<|endoftext|>');
  });

  it('round-trips through ClipTokenizer: every corpus word spells out of known merged tokens', () => {
    const dir = join(tmp, 'roundtrip');
    const { tokens, merges } = trainClipBpe(corpus, 600);
    writeClipTokenizerFolder(dir, tokens, merges);
    const tokenizer = ClipTokenizer.fromFolder(dir);
    const words = new Set(corpus.flatMap((line) => preTokenize(cleanText(line))));
    const merged = new Set(tokens.slice(512, -2));
    let wholeWords = 0;
    for (const word of words) {
      const ids = tokenizer.encode(word);
      expect(ids.every((id) => id >= 0 && id < 512 + merges.length)).toBe(true);
      expect(ids.map((id) => tokens[id]).join('')).toBe(wordSymbols(word).join(''));
      if (ids.length === 1 && merged.has(tokens[ids[0]])) wholeWords++;
    }
    expect(wholeWords).toBeGreaterThan(20);
    expect(tokenizer.encode('a red cube').map((id) => tokens[id])).toEqual(['a</w>', 'red</w>', 'cube</w>']);
  });

  it('stops early once every word is one token, and each word then encodes to itself', () => {
    const { tokens, merges } = trainClipBpe(corpus, 5000);
    expect(tokens.length).toBeLessThan(5000);
    const dir = join(tmp, 'full');
    writeClipTokenizerFolder(dir, tokens, merges);
    const tokenizer = ClipTokenizer.fromFolder(dir);
    for (const word of new Set(corpus.flatMap((line) => preTokenize(cleanText(line))))) {
      expect(tokenizer.encode(word).map((id) => tokens[id])).toEqual([wordSymbols(word).join('')]);
    }
  });

  it('refuses a vocabulary too small for the byte tokens', () => {
    expect(() => trainClipBpe(corpus, 513)).toThrow(InvalidInputError);
    expect(() => trainClipBpe(corpus, 600.5)).toThrow(/at least 514/);
  });
});

describe('ClipTokenizer', () => {
  const tiny = ClipTokenizer.fromFolder(join(fixtures, 'tiny'));

  it('applies merges by rank, left to right without overlaps, with </w> on word ends', () => {
    expect(tiny.startId).toBe(900);
    expect(tiny.endId).toBe(901);
    expect(tiny.encode('the')).toEqual([14]);
    expect(tiny.encode('cat')).toEqual([24]); // c a → ca, then ca t</w>
    expect(tiny.encode('sat')).toEqual([26, 25]); // no merge for s a: s + at</w>
    expect(tiny.encode('aaaa')).toEqual([31, 21, 30]); // aa, a, a</w>: no overlapping merge
    expect(tiny.encode("it's")).toEqual([40, 22, 43]); // i t</w> + 's</w>
    expect(tiny.encode('é')).toEqual([52]); // UTF-8 C3 A9 → byte characters Ã ©
    expect(tiny.encode('42')).toEqual([62, 63]); // digits are single pieces
    expect(tiny.encode('z')).toEqual([901]); // a symbol missing from the vocabulary → end token, as CLIP's unk
    expect(tiny.encode('<|startoftext|>the<|endoftext|>')).toEqual([900, 14, 901]);
    expect(tiny.encode('  THE   Cat,  sat. ')).toEqual([14, 24, 60, 26, 25, 61]);
    expect(tiny.encodeWords('the cat, sat.')).toEqual([[14], [24, 60], [26, 25, 61]]);
    expect(tiny.encode('')).toEqual([]);
  });

  it('gives identical ids from tokenizer.json (pair or string merges) and vocab.json + merges.txt', () => {
    const fromJson = ClipTokenizer.fromFolder(join(fixtures, 'tiny', 'json-only'));
    const stringMerges = join(tmp, 'string-merges');
    mkdirSync(stringMerges);
    const json = JSON.parse(readFileSync(join(fixtures, 'tiny', 'json-only', 'tokenizer.json'), 'utf8'));
    json.model.merges = json.model.merges.map((pair: string[]) => pair.join(' '));
    writeFileSync(join(stringMerges, 'tokenizer.json'), JSON.stringify(json));
    const fromStrings = ClipTokenizer.fromFolder(stringMerges);
    for (const text of ['the cat sat', "aaaa it's é 42", '<|startoftext|>the, cat.', 'zebra']) {
      const expected = tiny.encode(text);
      expect(fromJson.encode(text)).toEqual(expected);
      expect(fromStrings.encode(text)).toEqual(expected);
    }
    expect([fromJson.startId, fromJson.endId]).toEqual([900, 901]);
  });

  it("encodes to CLIP's real ids (with the slice of its vocabulary these phrases use)", () => {
    const clip = ClipTokenizer.fromFolder(join(fixtures, 'clip-subset'));
    expect([clip.startId, clip.endId]).toEqual([49406, 49407]);
    expect(clip.encode('a photo of a cat')).toEqual([320, 1125, 539, 320, 2368]);
    expect(clip.encode('A Café &amp;amp; crème brûlée!!')).toEqual([320, 15304, 261, 1075, 12138, 614, 711, 127, 119, 75, 13489, 748]);
    expect(clip.encode("it's the 1920s, 🐱 emoji")).toEqual([585, 568, 518, 272, 280, 273, 271, 338, 267, 22979, 16327]);
    expect(clip.encode('best quality, highly detailed')).toEqual([949, 3027, 267, 5302, 12609]);
  });

  it('cleans text as CLIP does', () => {
    expect(cleanText('  Hello\t\n  WORLD  ')).toBe('hello world');
    expect(cleanText('fish &amp;amp; chips &lt;3 &#169; &#x263A; &bogus; &constructor;')).toBe('fish & chips <3 © ☺ &bogus; &constructor;');
    expect(cleanText('a&nbsp;b')).toBe('a b');
    expect(cleanText('cafe\u0301')).toBe('café'); // NFC
    expect(cleanText('ÀÉÎ')).toBe('àéî');
  });

  it("pre-tokenises with CLIP's pattern", () => {
    expect(preTokenize("it's a cat's 12 toys!! don't")).toEqual(['it', "'s", 'a', 'cat', "'s", '1', '2', 'toys', '!!', 'don', "'t"]);
    expect(preTokenize("we're i've i'm you'll he'd")).toEqual(['we', "'re", 'i', "'ve", 'i', "'m", 'you', "'ll", 'he', "'d"]);
    expect(preTokenize('ñandú,日本語 x_y')).toEqual(['ñandú', ',', '日本語', 'x', '_', 'y']);
    expect(preTokenize('<|startoftext|>a<|endoftext|><|x|>')).toEqual(['<|startoftext|>', 'a', '<|endoftext|>', '<|', 'x', '|>']);
    expect(preTokenize('(a:1.2)')).toEqual(['(', 'a', ':', '1', '.', '2', ')']);
  });

  it('rejects malformed tokenizer files with the file and the problem', () => {
    const bad = (name: string, files: Record<string, string>) => {
      const dir = join(tmp, name);
      mkdirSync(dir);
      for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
      return () => ClipTokenizer.fromFolder(dir);
    };
    const vocab = readFileSync(join(fixtures, 'tiny', 'vocab.json'), 'utf8');
    expect(bad('three-part', { 'vocab.json': vocab, 'merges.txt': '#version: 0.2\nt h\na b c\n' })).toThrow(/merges\.txt: line 3: expected two symbols/);
    expect(bad('bad-json', { 'vocab.json': '{', 'merges.txt': '' })).toThrow(FileFormatError);
    expect(bad('bad-id', { 'vocab.json': '{"a": "x"}', 'merges.txt': '' })).toThrow(/token "a" has id "x"/);
    expect(bad('no-specials', { 'vocab.json': '{"a": 0}', 'merges.txt': '' })).toThrow(/lacks <\|startoftext\|>/);
    expect(bad('gpt2', { 'tokenizer.json': JSON.stringify({ model: { type: 'BPE', end_of_word_suffix: null, vocab: {}, merges: [] } }) })).toThrow(
      /end_of_word_suffix null; a CLIP tokenizer marks word ends with "<\/w>"/,
    );
    expect(bad('wordpiece', { 'tokenizer.json': JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }) })).toThrow(/WordPiece/);
    expect(bad('empty', {})).toThrow(NotFoundError);
  });
});

describe('findTokenizer', () => {
  const root = join(tmp, 'find');
  const tiny = readFileSync(join(fixtures, 'tiny', 'vocab.json'), 'utf8');
  const place = (dir: string, files: string[] = ['vocab.json', 'merges.txt']) => {
    mkdirSync(dir, { recursive: true });
    for (const file of files) writeFileSync(join(dir, file), file === 'merges.txt' ? '#version: 0.2\n' : tiny);
    return dir;
  };
  const shared = join(root, 'models', 'tokenizers');

  it("uses a diffusers folder's tokenizer/ for CLIP-L and tokenizer_2/ for CLIP-G", () => {
    const model = join(root, 'sdxl-diffusers');
    place(join(model, 'tokenizer'));
    place(join(model, 'tokenizer_2'), ['tokenizer.json']);
    expect(findTokenizer({ modelPath: model, tokenizersDir: shared, kind: 'clip-l' })).toBe(join(model, 'tokenizer'));
    expect(findTokenizer({ modelPath: model, tokenizersDir: shared, kind: 'clip-g' })).toBe(join(model, 'tokenizer_2'));
  });

  it('uses name.tokenizer/ beside a single-file checkpoint, else the shared folder', () => {
    const checkpoints = join(root, 'models', 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    const model = join(checkpoints, 'mymodel.safetensors');
    writeFileSync(model, '');
    place(join(checkpoints, 'mymodel.tokenizer'));
    place(join(checkpoints, 'mymodel.tokenizer_2'), ['vocab.json']); // incomplete: skipped
    place(join(shared, 'clip-l'));
    place(join(shared, 'clip-g'));
    expect(findTokenizer({ modelPath: model, tokenizersDir: shared, kind: 'clip-l' })).toBe(join(checkpoints, 'mymodel.tokenizer'));
    expect(findTokenizer({ modelPath: model, tokenizersDir: shared, kind: 'clip-g' })).toBe(join(shared, 'clip-g'));
    expect(findTokenizer({ tokenizersDir: shared, kind: 'clip-l' })).toBe(join(shared, 'clip-l'));
  });

  it('says which folders it searched and where to put which files', () => {
    const model = join(root, 'lonely', 'other.safetensors');
    const find = (kind: 'clip-l' | 'clip-g') => () => findTokenizer({ modelPath: model, tokenizersDir: 'models/tokenizers-empty', kind });
    expect(find('clip-l')).toThrow(NotFoundError);
    expect(find('clip-l')).toThrow(
      `No CLIP ViT-L/14 tokenizer found (searched ${join(root, 'lonely', 'other.tokenizer')}/, models/tokenizers-empty/clip-l/). ` +
        'Put vocab.json and merges.txt (or tokenizer.json) of the CLIP ViT-L/14 tokenizer in models/tokenizers-empty/clip-l/ ' +
        '(they are in the tokenizer/ folder of any Stable Diffusion 1.x or SDXL diffusers repository, or openai/clip-vit-large-patch14).',
    );
    expect(find('clip-g')).toThrow(/No OpenCLIP ViT-bigG\/14 tokenizer found .*other\.tokenizer_2\/.*in models\/tokenizers-empty\/clip-g\/ \(they are in the tokenizer_2\/ folder of any SDXL/);
  });
});
