import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

/** `../shared/fixtures` beside the clone (CI has it; a user's clone usually does not). */
export const sharedFixtures = resolve(repoRoot, '..', 'shared', 'fixtures');

/**
 * The path of a shared fixture, or undefined after printing why the caller will skip. Use as
 * `const f = sharedFixture('x'); describe.skipIf(!f)(...)`.
 */
export function sharedFixture(...parts: string[]): string | undefined {
  const path = join(sharedFixtures, ...parts);
  if (existsSync(path)) return path;
  console.warn(`[skip] shared fixture ${path} is absent (it ships beside the repository in CI, not in a user's clone)`);
  return undefined;
}
