/** The `loragraph` command line. */
import { Command, Option } from 'commander';
import { LoraGraphError } from '../../engine/errors.ts';
import { describeCheckpoint, openCheckpoint } from '../../engine/models/checkpoint.ts';
import { MODULES, readTensors, runModuleCheck, writeTensors, type ModuleName } from '../../engine/models/module-check.ts';
import { parseSeed, writeNoiseFile } from '../../engine/noise/index.ts';
import { chooseProvider, parseProvider } from '../../engine/runtime/provider.ts';
import { EMPHASIS_MODES } from '../../engine/tokenizer/index.ts';
import { join } from 'node:path';
import { REPO_ROOT, resolveConfig, type ConfigFlags } from '../config.ts';
import { addLoraCommands } from './lora.ts';
import { runOnServer } from './remote.ts';
import { runWorkflowFile } from './run.ts';
import { parsePort, positiveNumber, serve, serveSettings } from './serve.ts';

const program = new Command('loragraph').description('Node-graph workflows for Stable Diffusion and LoRA').showHelpAfterError();

const folderOptions = (cmd: Command) =>
  cmd
    .option('--models <dir>', 'models folder (env LORAGRAPH_MODELS)')
    .option('--input <dir>', 'input images folder (env LORAGRAPH_INPUT)')
    .option('--output <dir>', 'output folder (env LORAGRAPH_OUTPUT)')
    .option('--data <dir>', 'data folder for the queue database (env LORAGRAPH_DATA)')
    .addOption(new Option('--provider <name>', 'execution provider (env LORAGRAPH_PROVIDER)').choices(['cpu', 'webgpu', 'cuda']))
    .addOption(new Option('--lora-method <method>', 'how LoRAs are applied (env LORAGRAPH_LORA_METHOD)').choices(['fuse', 'backup', 'dynamic']))
    .addOption(new Option('--emphasis <mode>', 'prompt (word:1.2) weighting: comfy or a1111 (env LORAGRAPH_EMPHASIS)').choices(EMPHASIS_MODES));

folderOptions(
  program
    .command('run')
    .description('run a workflow headlessly: API or editor JSON, or a PNG with an embedded workflow')
    .argument('<workflow>', 'workflow JSON file or PNG')
    .option('--set <NODE.INPUT=VALUE>', 'override an input (repeatable); NODE is a node id or title', (v: string, acc: string[]) => [...acc, v], [])
    .option('--out <dir>', 'write images to this folder (with --server: download them there)')
    .option('--server <url>', 'submit to a running LoraGraph or ComfyUI server instead of running here')
    .option('-q, --quiet', 'no progress output'),
).action(async (workflow: string, opts: ConfigFlags & { set: string[]; out?: string; quiet?: boolean; server?: string }) => {
  if (opts.server) {
    process.exitCode = await runOnServer(workflow, opts.server, { set: opts.set, quiet: opts.quiet, out: opts.out });
    return;
  }
  const config = resolveConfig({ ...opts, output: opts.out ?? opts.output });
  process.exitCode = await runWorkflowFile(workflow, config, { set: opts.set, quiet: opts.quiet });
});

folderOptions(
  program
    .command('serve')
    .description('start the server: HTTP API (ComfyUI-compatible), socket.io and /ws progress, the status page')
    .option('--port <port>', 'port (env LORAGRAPH_PORT)', (v: string) => parsePort(v))
    .option('--listen [host]', 'address to bind (env LORAGRAPH_LISTEN); without a value, every interface (0.0.0.0)')
    .option('--temp <dir>', 'temp folder for previews (env LORAGRAPH_TEMP)')
    .option('--max-upload-size <MB>', 'largest upload in MB (env LORAGRAPH_MAX_UPLOAD_MB)', (v: string) => positiveNumber(v, '--max-upload-size')),
).action(async (opts: ConfigFlags & { port?: number; listen?: string | true; maxUploadSize?: number }) => {
  await serve(resolveConfig(opts), serveSettings(opts));
});

program
  .command('eval')
  .description('run one module of a checkpoint on named input tensors (compare with a reference implementation)')
  .argument('<checkpoint>', 'a .safetensors checkpoint, a diffusers folder, or a single-module file/folder')
  .addOption(new Option('--module <module>', 'which module').choices([...MODULES]).makeOptionMandatory())
  .requiredOption('--inputs <file>', 'safetensors file with the input tensors (clip.input_ids, unet.sample, …)')
  .requiredOption('--out <file>', 'safetensors file to write the outputs to')
  .addOption(new Option('--provider <name>', 'execution provider').choices(['cpu', 'webgpu', 'cuda']).default('cpu'))
  .action(async (checkpoint: string, opts: { module: ModuleName; inputs: string; out: string; provider: string }) => {
    const choice = await chooseProvider(parseProvider(opts.provider));
    if (choice.fallbackReason) console.error(choice.fallbackReason);
    const outputs = await runModuleCheck(checkpoint, opts.module, readTensors(opts.inputs), { provider: choice.provider });
    writeTensors(opts.out, outputs);
    for (const [name, t] of outputs) console.log(`${name} [${t.shape.join(', ')}]`);
  });

program
  .command('info')
  .description('what a checkpoint is: family, layout, prediction type, and the structure read from its tensors')
  .argument('<checkpoint>', 'a .safetensors checkpoint, a diffusers folder, or a single-module file/folder')
  .action((checkpoint: string) => {
    const ckpt = openCheckpoint(checkpoint);
    console.log(describeCheckpoint(ckpt).split('; ').join('\n'));
    ckpt.close();
  });

program
  .command('noise')
  .description("write torch's CPU randn for a seed and shape (ComfyUI's initial noise) to a safetensors file")
  .requiredOption('--seed <seed>', 'seed, 0 … 2^64-1')
  .requiredOption('--shape <dims>', 'comma-separated shape, e.g. 1,4,64,64')
  .requiredOption('--out <file>', 'output file (tensor "noise")')
  .action((opts: { seed: string; shape: string; out: string }) => {
    const shape = opts.shape.split(',').map((d) => Number(d.trim()));
    writeNoiseFile(opts.out, parseSeed(opts.seed), shape);
    console.log(`${opts.out}: noise [${shape.join(', ')}] for seed ${opts.seed}`);
  });

program
  .command('bench')
  .description('run the benchmarks (speed and memory figures, printed and written to bench/results/)')
  .option('--only <names>', 'comma-separated subset: engine, lora, server', (v: string) => v.split(','))
  .option('--sizes <sizes>', 'image sizes for the UNet step benchmark', (v: string) => v.split(',').map(Number))
  .option('--steps <n>', 'timed steps per measurement', Number)
  .option('--models <dir>', 'models folder (env LORAGRAPH_MODELS)')
  .action(async (opts: { only?: string[]; sizes?: number[]; steps?: number; models?: string }) => {
    const { runBenchmarks } = await import('../../bench/run.ts');
    const config = resolveConfig({ models: opts.models });
    await runBenchmarks({
      modelsDir: config.modelsDir,
      workDir: join(config.dataDir, 'bench'),
      resultsDir: join(REPO_ROOT, 'bench', 'results'),
      only: opts.only,
      sizes: opts.sizes,
      steps: opts.steps,
    });
  });

addLoraCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof LoraGraphError) {
    console.error(`error: ${err.message}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
