/**
 * Where things live and how the engine runs, from flags, then environment variables, then defaults next to
 * the repository (ComfyUI's layout: models/, input/, output/, temp/, plus data/ for the queue database).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../engine/errors.ts';
import type { ExecutionProvider } from '../engine/runtime/session.ts';
import { modelFolders } from '../engine/models/embedded.ts';
import { ModelCache } from '../engine/runtime/model-cache.ts';
import { DEFAULT_EMPHASIS_MODE, EMPHASIS_MODES, type EmphasisMode } from '../engine/tokenizer/index.ts';
import type { LoraApplyMethod, NodeEnv } from '../nodes/index.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface AppConfig {
  readonly modelsDir: string;
  readonly inputDir: string;
  readonly outputDir: string;
  readonly tempDir: string;
  readonly dataDir: string;
  readonly provider: string;
  readonly loraApplyMethod: LoraApplyMethod;
  readonly previewEvery: number;
  readonly emphasis: EmphasisMode;
}

export interface ConfigFlags {
  models?: string;
  input?: string;
  output?: string;
  temp?: string;
  data?: string;
  provider?: string;
  loraMethod?: string;
  emphasis?: string;
}

const METHODS: readonly LoraApplyMethod[] = ['fuse', 'backup', 'dynamic'];

export function resolveConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): AppConfig {
  const pick = (flag: string | undefined, name: string, fallback: string) => resolve(flag ?? env[name] ?? fallback);
  const method = (flags.loraMethod ?? env.LORAGRAPH_LORA_METHOD ?? 'fuse') as LoraApplyMethod;
  if (!METHODS.includes(method)) throw new InvalidInputError(`unknown LoRA apply method "${method}"; choose one of ${METHODS.join(', ')}`);
  const emphasis = (flags.emphasis ?? env.LORAGRAPH_EMPHASIS ?? DEFAULT_EMPHASIS_MODE) as EmphasisMode;
  if (!EMPHASIS_MODES.includes(emphasis)) throw new InvalidInputError(`unknown prompt emphasis "${emphasis}"; choose one of ${EMPHASIS_MODES.join(', ')}`);
  const config: AppConfig = {
    modelsDir: pick(flags.models, 'LORAGRAPH_MODELS', join(REPO_ROOT, 'models')),
    inputDir: pick(flags.input, 'LORAGRAPH_INPUT', join(REPO_ROOT, 'input')),
    outputDir: pick(flags.output, 'LORAGRAPH_OUTPUT', join(REPO_ROOT, 'output')),
    tempDir: pick(flags.temp, 'LORAGRAPH_TEMP', join(REPO_ROOT, 'temp')),
    dataDir: pick(flags.data, 'LORAGRAPH_DATA', join(REPO_ROOT, 'data')),
    provider: flags.provider ?? env.LORAGRAPH_PROVIDER ?? 'cpu',
    loraApplyMethod: method,
    previewEvery: 2,
    emphasis,
  };
  for (const dir of [config.modelsDir, config.inputDir, config.outputDir, config.tempDir, config.dataDir]) mkdirSync(dir, { recursive: true });
  return config;
}

export type EnvConfig = Pick<AppConfig, 'modelsDir' | 'inputDir' | 'outputDir' | 'tempDir' | 'loraApplyMethod' | 'previewEvery' | 'emphasis'>;

/**
 * What nodes run with: the folders, a model cache on `provider` and the settings. Session folders live beside
 * the models, so checkpoints are hard-linked into them rather than copied.
 */
export function nodeEnv(config: EnvConfig, provider: ExecutionProvider = 'cpu'): NodeEnv {
  const models = modelFolders(config.modelsDir);
  return {
    folders: { models, input: config.inputDir, output: config.outputDir, temp: config.tempDir },
    models: new ModelCache({ provider, scratchDir: join(models.root, '.scratch') }, models.tokenizers),
    settings: { loraApplyMethod: config.loraApplyMethod, previewEvery: config.previewEvery, emphasis: config.emphasis },
  };
}

/**
 * The node environment of the server thread (and the CLI before it starts the worker): folders for combo lists
 * and validation. Its model cache is never used there: models load only in the engine worker.
 */
export function serverThreadEnv(config: AppConfig): NodeEnv {
  return nodeEnv(config);
}
