import { defineConfig } from 'vitest/config';

// Test processes (forked below) inherit this: see bin/loragraph.js for why glibc's mmap threshold is fixed.
process.env.MALLOC_MMAP_THRESHOLD_ ??= '131072';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
