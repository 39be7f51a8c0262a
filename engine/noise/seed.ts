import { InvalidInputError } from '../errors.ts';

/** Seeds are unsigned 64-bit integers, as in ComfyUI (its INT max) and torch's `manual_seed`. */
export const MAX_SEED = (1n << 64n) - 1n;

function invalidSeed(value: unknown, hint = ''): InvalidInputError {
  return new InvalidInputError(
    `seed ${JSON.stringify(String(value))} is not valid: a seed is a whole number from 0 to ${MAX_SEED}${hint}`,
  );
}

/** Throws unless 0 ≤ seed ≤ 2^64 − 1. */
export function checkSeed(seed: bigint): bigint {
  if (seed < 0n || seed > MAX_SEED) throw invalidSeed(seed);
  return seed;
}

/**
 * A seed from user input without going through a double: decimal strings of any length up to 2^64 − 1,
 * bigints, and numbers only while they are safe integers (a larger number has already been rounded).
 */
export function parseSeed(value: string | number | bigint): bigint {
  if (typeof value === 'bigint') return checkSeed(value);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value > Number.MAX_SAFE_INTEGER) {
      throw invalidSeed(value, ' (numbers above 2^53 − 1 have lost digits: pass such a seed as a decimal string)');
    }
    if (!Number.isSafeInteger(value) || value < 0) throw invalidSeed(value);
    return BigInt(value);
  }
  const text = value.trim();
  if (!/^[0-9]+$/.test(text)) throw invalidSeed(value);
  const seed = BigInt(text);
  if (seed > MAX_SEED) throw invalidSeed(value);
  return seed;
}
