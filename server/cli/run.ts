/**
 * `loragraph run workflow.json [--set NODE.INPUT=VALUE …] [--out DIR]`: runs a saved workflow headlessly in
 * the engine worker, with a progress bar on a terminal, and prints the files it wrote.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import cliProgress from 'cli-progress';
import { InvalidInputError } from '../../engine/errors.ts';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { ensureDefaultModel, modelFolders } from '../../engine/models/embedded.ts';
import type { AppConfig } from '../config.ts';
import { asApiPrompt, type ApiPrompt } from '../executor/prompt.ts';
import { WorkerHost } from '../worker/worker-host.ts';

/** `--set 3.seed=42` or `--set KSampler.steps=10` (node id or title); the value is JSON when it parses. */
export function applySets(prompt: ApiPrompt, sets: readonly string[]): void {
  for (const set of sets) {
    const m = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(set);
    if (!m) throw new InvalidInputError(`--set "${set}" must look like NODE.INPUT=VALUE (NODE is a node id or title)`);
    const [, nodeKey, input, raw] = m;
    const ids = prompt[nodeKey] ? [nodeKey] : Object.keys(prompt).filter((id) => prompt[id]._meta?.title === nodeKey || prompt[id].class_type === nodeKey);
    if (ids.length === 0) throw new InvalidInputError(`--set "${set}": no node with id or title "${nodeKey}" (ids: ${Object.keys(prompt).join(', ')})`);
    if (ids.length > 1) throw new InvalidInputError(`--set "${set}": "${nodeKey}" matches nodes ${ids.join(', ')}; use a node id`);
    let value: Json;
    try {
      value = parseJson(raw);
    } catch {
      value = raw;
    }
    prompt[ids[0]].inputs[input] = value;
  }
}

export interface RunOptions {
  readonly set: readonly string[];
  readonly quiet?: boolean;
}

export async function runWorkflowFile(file: string, config: AppConfig, options: RunOptions): Promise<number> {
  const prompt = asApiPrompt(parseJson(readFileSync(file, 'utf8'), file), file);
  applySets(prompt, options.set);
  ensureDefaultModel(modelFolders(config.modelsDir));
  const host = new WorkerHost(config);
  const { providerNote } = await host.ready;
  if (providerNote) console.error(providerNote);
  const bar = process.stderr.isTTY && !options.quiet ? new cliProgress.SingleBar({ format: ' {node} |{bar}| {value}/{total}', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
  let barStarted = false;
  const stopInterrupt = () => host.interrupt();
  process.once('SIGINT', stopInterrupt);
  try {
    const result = await host.execute({ promptId: randomUUID(), promptText: stringifyJson(prompt) }, (event) => {
      if (event.name === 'executing') {
        if (barStarted) bar?.stop();
        barStarted = false;
        if (!bar && !options.quiet) console.error(`running ${event.node} (${prompt[event.node]?.class_type})`);
      } else if (event.name === 'progress') {
        if (bar) {
          if (!barStarted) bar.start(event.max, 0, { node: `${event.node} ${prompt[event.node]?.class_type}` });
          barStarted = true;
          bar.update(event.value);
        }
      }
    });
    if (barStarted) bar?.stop();
    if (result.status !== 'success') {
      const f = result.failure;
      console.error(`${result.status === 'interrupted' ? 'Interrupted' : 'Error'}${f.nodeId ? ` in node ${f.nodeId} (${f.nodeType})` : ''}: ${f.message}`);
      return 1;
    }
    for (const ui of Object.values(result.outputs)) {
      const images = (ui.images ?? []) as { filename: string; subfolder: string; type: string }[];
      for (const img of images) {
        const root = img.type === 'temp' ? config.tempDir : config.outputDir;
        console.log(relative(process.cwd(), `${root}/${img.subfolder ? `${img.subfolder}/` : ''}${img.filename}`));
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', stopInterrupt);
    await host.terminate();
  }
}
