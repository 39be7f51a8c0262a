/**
 * `loragraph run workflow.json|image.png [--set NODE.INPUT=VALUE …] [--out DIR]`: validates a saved workflow
 * (API or editor format, or embedded in a PNG), runs it headlessly in the engine worker with a progress bar on
 * a terminal, and prints the files it wrote.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import { InvalidInputError } from '../../engine/errors.ts';
import { parseJson, stringifyJson, type Json } from '../../engine/json.ts';
import { ensureDefaultModel, modelFolders } from '../../engine/models/embedded.ts';
import { NODES } from '../../nodes/index.ts';
import { serverThreadEnv, type AppConfig } from '../config.ts';
import { asApiPrompt, type ApiPrompt } from '../executor/prompt.ts';
import { formatNodeErrors, formatValidation, validatePrompt } from '../executor/validate.ts';
import { WorkerHost } from '../worker/worker-host.ts';
import { RunProgress } from './progress.ts';
import { loadWorkflowBytes } from '../workflow/load.ts';

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

/** The API prompt of a workflow file (any format), with the --set overrides applied, and its editor workflow. */
export function readWorkflow(file: string, sets: readonly string[]): { prompt: ApiPrompt; workflow?: Record<string, Json> } {
  const loaded = loadWorkflowBytes(readFileSync(file), file, NODES);
  const prompt = asApiPrompt(loaded.prompt, file);
  applySets(prompt, sets);
  return { prompt, workflow: loaded.workflow };
}

export async function runWorkflowFile(file: string, config: AppConfig, options: RunOptions): Promise<number> {
  const { prompt, workflow } = readWorkflow(file, options.set);
  ensureDefaultModel(modelFolders(config.modelsDir));
  const validation = validatePrompt(prompt as unknown as Json, NODES, serverThreadEnv(config));
  if (!validation.ok) {
    console.error(formatValidation(validation.error, validation.nodeErrors));
    return 1;
  }
  if (Object.keys(validation.nodeErrors).length > 0) {
    console.error(`Some outputs fail validation and are skipped:\n${formatNodeErrors(validation.nodeErrors)}`);
  }
  const host = new WorkerHost(config);
  const { providerNote } = await host.ready;
  if (providerNote) console.error(providerNote);
  const display = new RunProgress((node) => prompt[node]?.class_type, options.quiet);
  const stopInterrupt = () => host.interrupt();
  process.once('SIGINT', stopInterrupt);
  try {
    const request = {
      promptId: randomUUID(),
      promptText: stringifyJson(validation.prompt),
      extraPngInfoText: workflow ? stringifyJson({ workflow }) : undefined,
      targets: validation.outputs,
    };
    const result = await host.execute(request, (event) => {
      if (event.name === 'executing') display.executing(event.node);
      else if (event.name === 'progress') display.progress(event.node, event.value, event.max);
    });
    display.stop();
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
