/** `npm run bench`: every benchmark, printed as tables and written as JSON under bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchEngine, printEngineTable } from './engine.ts';
import { benchLora, printLoraTable } from './lora.ts';
import { formatServerBenchmark, runServerBenchmark } from './server.ts';

export interface BenchOptions {
  readonly modelsDir: string;
  readonly workDir: string;
  readonly resultsDir: string;
  readonly only?: readonly string[];
  readonly sizes?: readonly number[];
  readonly steps?: number;
}

export async function runBenchmarks(options: BenchOptions): Promise<Record<string, unknown>> {
  const wanted = (name: string) => !options.only?.length || options.only.includes(name);
  const results: Record<string, unknown> = { date: new Date().toISOString(), cpus: (await import('node:os')).cpus().length };
  if (wanted('engine')) {
    const r = await benchEngine(options.modelsDir, options.workDir, [...(options.sizes ?? [512, 256])], options.steps ?? 4);
    printEngineTable(r);
    results.engine = r;
  }
  if (wanted('lora')) {
    const engine = results.engine as Awaited<ReturnType<typeof benchEngine>> | undefined;
    const step512 = engine?.resolutions.find((x) => x.size === 512)?.engineStep ?? null;
    const r = await benchLora(options.modelsDir, options.workDir, step512, options.steps ?? 7);
    printLoraTable(r);
    results.lora = r;
  }
  if (wanted('server')) {
    const r = await runServerBenchmark();
    console.log(`\nServer\n${formatServerBenchmark(r)}`);
    results.server = r;
  }
  mkdirSync(options.resultsDir, { recursive: true });
  const file = join(options.resultsDir, `bench-${(results.date as string).replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nresults: ${file}`);
  return results;
}
