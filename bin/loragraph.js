#!/usr/bin/env node
// The `loragraph` command: TypeScript sources run through tsx, so there is no build step.
import { spawn } from 'node:child_process';

// glibc keeps freed mid-sized blocks in its heap, so after onnxruntime copies a model's weights the process
// would hold half as much memory again. A fixed mmap threshold makes those blocks go back to the system; it
// must be set before the process starts, so start once more with it.
if (process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
  });
  // Ctrl-C reaches the child directly (same process group); a SIGTERM sent to this process is passed on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../server/cli/main.ts');
}
