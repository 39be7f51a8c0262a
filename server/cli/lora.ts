/** `loragraph lora bake | combine | inspect`. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { bakeCheckpoint, combineLoras, formatLoraInspection, inspectLora, parseLoraSpec, resolveLoraName, type LoraSpec } from '../../engine/lora/index.ts';
import { modelFolders } from '../../engine/models/embedded.ts';
import { stringifyJson } from '../../engine/json.ts';
import { resolveConfig } from '../config.ts';

const collect = (v: string, acc: string[]) => [...acc, v];

/** A spec whose name is a file path as given, or else a name inside the loras folder. */
function resolveSpec(text: string, lorasDir: string): LoraSpec {
  const spec = parseLoraSpec(text);
  if (existsSync(spec.name) || existsSync(`${spec.name}.safetensors`)) return spec;
  return { ...spec, name: resolveLoraName(spec.name, lorasDir) };
}

export function addLoraCommands(program: Command): void {
  const lora = program.command('lora').description('bake LoRAs into a checkpoint, combine LoRAs, inspect a LoRA file');

  lora
    .command('bake')
    .description('write the checkpoint with LoRAs merged in (same layout, key names, dtypes and metadata)')
    .argument('<checkpoint>', 'single-file .safetensors checkpoint')
    .requiredOption('--lora <spec>', 'NAME_OR_PATH[:STRENGTH][:te=…][:unet=…][:in=…][:mid=…][:out=…] (repeatable)', collect, [])
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--models <dir>', 'models folder, for LoRA names (env LORAGRAPH_MODELS)')
    .action((checkpoint: string, opts: { lora: string[]; out: string; models?: string }) => {
      const dir = modelFolders(resolveConfig({ models: opts.models }).modelsDir).loras;
      const result = bakeCheckpoint(checkpoint, opts.lora.map((s) => resolveSpec(s, dir)), opts.out);
      console.log(`${opts.out}: ${result.changedTensors} tensors changed, ${result.copiedTensors} copied unchanged`);
    });

  lora
    .command('combine')
    .description('write one kohya-format LoRA equal to the weighted sum of several (exact, or SVD to a rank)')
    .requiredOption('--lora <spec>', 'NAME_OR_PATH[:STRENGTH][:te=…][:unet=…]… (repeatable)', collect, [])
    .option('--rank <r>', 'approximate the sum with rank r (randomized SVD)', Number)
    .option('--exact', 'concatenate ranks: the exact sum (LoRA/LoCon only)')
    .option('--checkpoint <file>', 'the base checkpoint (needed for weight-dependent families: DoRA, GLoRA, (IA)^3, OFT)')
    .option('--dtype <dtype>', 'F32 (default), F16 or BF16')
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--models <dir>', 'models folder, for LoRA names (env LORAGRAPH_MODELS)')
    .action((opts: { lora: string[]; rank?: number; exact?: boolean; checkpoint?: string; dtype?: 'F32' | 'F16' | 'BF16'; out: string; models?: string }) => {
      if ((opts.rank === undefined) === !opts.exact) throw new Error('choose one of --rank R or --exact');
      const dir = modelFolders(resolveConfig({ models: opts.models }).modelsDir).loras;
      const mode = opts.exact ? ({ exact: true } as const) : { rank: opts.rank! };
      const result = combineLoras(opts.lora.map((s) => resolveSpec(s, dir)), mode, opts.out, { checkpoint: opts.checkpoint, dtype: opts.dtype });
      console.log(
        `${opts.out}: ${result.modules} modules (${result.exact} exact, ${result.approximated} by SVD), max rank ${result.maxRank}, base ${result.baseModel ?? 'unknown'}`,
      );
    });

  lora
    .command('inspect')
    .description('family, base model, rank/alpha, module counts and trigger words of a LoRA file')
    .argument('<file>', 'LoRA .safetensors file (or a name in the loras folder)')
    .option('--json', 'print JSON')
    .option('--models <dir>', 'models folder, for LoRA names (env LORAGRAPH_MODELS)')
    .action((file: string, opts: { json?: boolean; models?: string }) => {
      const path = existsSync(file) ? file : resolveLoraName(file, modelFolders(resolveConfig({ models: opts.models }).modelsDir).loras);
      const info = inspectLora(path);
      console.log(opts.json ? stringifyJson(info, 2) : formatLoraInspection(info));
    });
}
