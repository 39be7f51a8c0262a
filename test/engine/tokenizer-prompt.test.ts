import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../engine/errors.ts';
import {
  CHUNK_LENGTH,
  ClipTokenizer,
  applyEmphasis,
  clipVocabTokens,
  padIdFor,
  parseEmphasis,
  tokenizePrompt,
  type PromptPart,
} from '../../engine/tokenizer/index.ts';
import { repoRoot } from '../helpers/fixtures.ts';

/** No merges: every letter is one token, so token counts are word lengths. */
const letters = new ClipTokenizer(new Map(clipVocabTokens([]).map((token, id) => [token, id])), []);
const START = letters.startId;
const END = letters.endId;
const id = (symbol: string) => clipVocabTokens([]).indexOf(symbol);

const asPairs = (parts: PromptPart[]) => parts.map((p) => (p.kind === 'break' ? 'BREAK' : [p.text, p.weight]));

describe('parseEmphasis (A1111 semantics)', () => {
  const table: [string, (string | [string, number])[]][] = [
    ['normal text', [['normal text', 1]]],
    ['a (b:1.5) c', [['a ', 1], ['b', 1.5], [' c', 1]]],
    ['an (important) word', [['an ', 1], ['important', 1.1], [' word', 1]]],
    ['((a))', [['a', 1.21]]],
    ['[a]', [['a', 1 / 1.1]]],
    ['[[a]:2)', [['a', 1 / 1.21], [':2)', 1 / 1.1]]],
    ['\\(a\\)', [['(a)', 1]]],
    ['\\(literal\\]', [['(literal]', 1]]],
    ['a\\\\b a\\b', [['a\\b ab', 1]]],
    ['(a:1.5', [['a:1.5', 1.1]]],
    ['(unbalanced', [['unbalanced', 1.1]]],
    ['a) b] c:1.5)', [['a) b] c:1.5)', 1]]],
    ['[a:1.5)', [['a:1.5)', 1 / 1.1]]],
    ['(a (b:2) c)', [['a ', 1.1], ['b', 2.2], [' c', 1.1]]],
    ['(a: 1.5 ) (b:-0.5) (c:.5)', [['a', 1.5], [' ', 1], ['b', -0.5], [' ', 1], ['c', 0.5]]],
    ['(unnecessary)(parens)', [['unnecessaryparens', 1.1]]],
    [
      'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
      [['a ', 1], ['house', 1.573], [' ', 1.1], ['on', 1], [' a ', 1.1], ['hill', 0.55], [', sun, ', 1.1], ['sky', 1.4641], ['.', 1.1]],
    ],
    ['a BREAK b', [['a', 1], 'BREAK', ['b', 1]]],
    ['a BREAK, b aBREAK break', [['a', 1], 'BREAK', [', b aBREAK break', 1]]],
    ['BREAK a BREAK', [['', 1], 'BREAK', ['a', 1], 'BREAK', ['', 1]]],
    ['(a BREAK b)', [['a', 1.1], 'BREAK', ['b', 1.1]]],
    ['', [['', 1]]],
  ];

  it.each(table)('%s', (prompt, expected) => {
    const parsed = asPairs(parseEmphasis(prompt));
    expect(parsed).toHaveLength(expected.length);
    parsed.forEach((part, i) => {
      const want = expected[i];
      if (typeof want === 'string' || typeof part === 'string') return expect(part).toEqual(want);
      expect(part[0]).toBe(want[0]);
      expect(part[1]).toBeCloseTo(want[1], 12);
    });
  });

  it('refuses a weight that is not a number', () => {
    expect(() => parseEmphasis('(a:1.2.3)')).toThrow(InvalidInputError);
    expect(() => parseEmphasis('(a:.)')).toThrow('prompt emphasis ":.)": "." is not a number');
  });
});

describe('tokenizePrompt', () => {
  const words = (n: number, word = 'a') => Array(n).fill(word).join(' ');

  it('wraps a prompt in start, end and end-token padding, weights 1 outside the prompt', () => {
    const { chunks } = tokenizePrompt(letters, 'ab (c) [d]');
    expect(chunks).toHaveLength(1);
    const [{ ids, weights }] = chunks;
    expect(ids).toHaveLength(CHUNK_LENGTH);
    expect(ids.slice(0, 6)).toEqual([START, id('a'), id('b</w>'), id('c</w>'), id('d</w>'), END]);
    expect(ids.slice(6)).toEqual(Array(71).fill(END));
    expect(weights.slice(0, 6)).toEqual([1, 1, 1, 1.1, 1 / 1.1, 1]);
    expect(weights.slice(6)).toEqual(Array(71).fill(1));
  });

  it('gives one chunk (start, end, padding) for an empty prompt', () => {
    expect(tokenizePrompt(letters, '').chunks).toEqual([{ ids: [START, END, ...Array(75).fill(END)], weights: Array(77).fill(1) }]);
    expect(tokenizePrompt(letters, '  ').chunks).toHaveLength(1);
  });

  it('pads with a configurable token: id 0 after the end token for OpenCLIP-G', () => {
    const { chunks } = tokenizePrompt(letters, 'a', { padId: padIdFor('clip-g', letters) });
    expect(chunks[0].ids.slice(0, 3)).toEqual([START, id('a</w>'), END]);
    expect(chunks[0].ids.slice(3)).toEqual(Array(74).fill(0));
    expect(padIdFor('clip-g', letters)).toBe(0);
    expect(padIdFor('clip-l', letters)).toBe(END);
  });

  it('splits long prompts into 75-token chunks', () => {
    const { chunks } = tokenizePrompt(letters, words(80));
    expect(chunks).toHaveLength(2);
    expect(chunks[0].ids).toEqual([START, ...Array(75).fill(id('a</w>')), END]);
    expect(chunks[1].ids.slice(0, 7)).toEqual([START, ...Array(5).fill(id('a</w>')), END]);
    expect(tokenizePrompt(letters, words(75)).chunks).toHaveLength(1);
    expect(tokenizePrompt(letters, words(151)).chunks).toHaveLength(3);
  });

  it('moves a word that does not fit whole to the next chunk', () => {
    const { chunks } = tokenizePrompt(letters, `${words(74)} (xy:1.3) z`);
    expect(chunks).toHaveLength(2);
    expect(chunks[0].ids.slice(74, 77)).toEqual([id('a</w>'), END, END]);
    expect(chunks[1].ids.slice(0, 5)).toEqual([START, id('x'), id('y</w>'), id('z</w>'), END]);
    expect(chunks[1].weights.slice(0, 5)).toEqual([1, 1.3, 1.3, 1, 1]);
  });

  it('splits a word of 8 or more tokens across chunks rather than moving it', () => {
    const { chunks } = tokenizePrompt(letters, `${words(70)} abcdefghij`);
    expect(chunks).toHaveLength(2);
    expect(chunks[0].ids.slice(70)).toEqual([id('a</w>'), id('a'), id('b'), id('c'), id('d'), id('e'), END]);
    expect(chunks[1].ids.slice(0, 7)).toEqual([START, id('f'), id('g'), id('h'), id('i'), id('j</w>'), END]);
  });

  it('starts a new chunk at BREAK, even an empty one, and drops a trailing empty chunk', () => {
    const ids = (prompt: string) => tokenizePrompt(letters, prompt).chunks.map((c) => c.ids.slice(0, 3));
    expect(ids('a BREAK b')).toEqual([[START, id('a</w>'), END], [START, id('b</w>'), END]]);
    expect(ids('BREAK a')).toEqual([[START, END, END], [START, id('a</w>'), END]]);
    expect(ids('a BREAK')).toEqual([[START, id('a</w>'), END]]);
    expect(ids(`${words(75)} BREAK b`)).toHaveLength(2);
  });

  it("keeps CLIP's real ids and the weights per token", () => {
    const clip = ClipTokenizer.fromFolder(join(repoRoot, 'test', 'fixtures', 'tokenizer', 'clip-subset'));
    const [chunk] = tokenizePrompt(clip, 'a photo of a (cat:1.2)').chunks;
    expect(chunk.ids.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 49407, 49407]);
    expect(chunk.weights.slice(0, 8)).toEqual([1, 1, 1, 1, 1, 1.2, 1, 1]);
  });
});

describe('applyEmphasis', () => {
  // Three tokens of width 2.
  const z = new Float32Array([1, 2, 3, 4, 5, 6]);
  const weights = [1, 2, 0.5];

  it("ComfyUI's: moves weighted tokens relative to the empty prompt's encoding", () => {
    const emptyZ = new Float32Array([0.5, 0.5, 1, 1, 2, 2]);
    // (z − e)·w + e: token 1 → (3−1)·2+1, (4−1)·2+1; token 2 → (5−2)·0.5+2, (6−2)·0.5+2.
    expect([...applyEmphasis(z, weights, { mode: 'comfy', emptyZ })]).toEqual([1, 2, 5, 7, 3.5, 4]);
    expect(() => applyEmphasis(z, weights, { mode: 'comfy', emptyZ: new Float32Array(4) })).toThrow(/emptyZ/);
  });

  it("A1111's: multiplies, then restores the chunk's mean", () => {
    const out = applyEmphasis(z, weights, { mode: 'a1111' });
    const scaled = [1, 2, 6, 8, 2.5, 3]; // z·w, mean 3.75; z's mean is 3.5
    scaled.forEach((value, i) => expect(out[i]).toBeCloseTo((value * 3.5) / 3.75, 6));
    expect(out.reduce((a, b) => a + b, 0) / out.length).toBeCloseTo(3.5, 6);
    expect(() => applyEmphasis(z, [1, 2, 3, 4], { mode: 'a1111' })).toThrow(/do not split/);
  });
});
