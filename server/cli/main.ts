/** The `loragraph` command line. */
import { Command, Option } from 'commander';
import { LoraGraphError } from '../../engine/errors.ts';
import { MODULES, readTensors, runModuleCheck, writeTensors, type ModuleName } from '../../engine/models/module-check.ts';
import { parseSeed, writeNoiseFile } from '../../engine/noise/index.ts';
import { chooseProvider, parseProvider } from '../../engine/runtime/provider.ts';
import { resolveConfig, type ConfigFlags } from '../config.ts';
import { runWorkflowFile } from './run.ts';

const program = new Command('loragraph').description('Node-graph workflows for Stable Diffusion and LoRA').showHelpAfterError();

const folderOptions = (cmd: Command) =>
  cmd
    .option('--models <dir>', 'models folder (env LORAGRAPH_MODELS)')
    .option('--input <dir>', 'input images folder (env LORAGRAPH_INPUT)')
    .option('--output <dir>', 'output folder (env LORAGRAPH_OUTPUT)')
    .option('--data <dir>', 'data folder for the queue database (env LORAGRAPH_DATA)')
    .addOption(new Option('--provider <name>', 'execution provider (env LORAGRAPH_PROVIDER)').choices(['cpu', 'webgpu', 'cuda']))
    .addOption(new Option('--lora-method <method>', 'how LoRAs are applied (env LORAGRAPH_LORA_METHOD)').choices(['fuse', 'backup', 'dynamic']));

folderOptions(
  program
    .command('run')
    .description('run an API-format workflow file headlessly')
    .argument('<workflow>', 'workflow JSON file')
    .option('--set <NODE.INPUT=VALUE>', 'override an input (repeatable); NODE is a node id or title', (v: string, acc: string[]) => [...acc, v], [])
    .option('--out <dir>', 'write images to this folder')
    .option('-q, --quiet', 'no progress output'),
).action(async (workflow: string, opts: ConfigFlags & { set: string[]; out?: string; quiet?: boolean }) => {
  const config = resolveConfig({ ...opts, output: opts.out ?? opts.output });
  process.exitCode = await runWorkflowFile(workflow, config, { set: opts.set, quiet: opts.quiet });
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
