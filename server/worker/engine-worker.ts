/**
 * The engine worker: everything that touches onnxruntime runs here, so the main thread (HTTP, sockets,
 * terminal) stays responsive while a session runs synchronously. It executes one prompt at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { encodeJpegPreview } from '../../engine/image/index.ts';
import { parseJson, type Json } from '../../engine/json.ts';
import { chooseProvider, parseProvider } from '../../engine/runtime/provider.ts';
import { NODES, type NodeEnv } from '../../nodes/index.ts';
import { Executor } from '../executor/executor.ts';
import { asApiPrompt } from '../executor/prompt.ts';
import { nodeEnv } from '../config.ts';
import type { EngineEvent, FromWorker, ToWorker, WorkerConfig } from './protocol.ts';

const config = workerData as WorkerConfig;
const port = parentPort!;
const flag = new Int32Array(config.interruptFlag);
const send = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function main(): Promise<void> {
  const choice = await chooseProvider(parseProvider(config.provider));
  const env = nodeEnv(config, choice.provider);
  const executor = new Executor(NODES, env);
  let queue = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    queue = queue.then(() => handle(message, executor, env)).catch((err: unknown) => send({ type: 'fatal', message: String(err) }));
  });
  send({ type: 'ready', provider: choice.provider, providerNote: choice.fallbackReason });
}

async function handle(message: ToWorker, executor: Executor, env: NodeEnv): Promise<void> {
  if (message.type === 'free') {
    if (message.freeMemory) executor.clearCache();
    if (message.unloadModels || message.freeMemory) await env.models.clear();
    send({ type: 'freed' });
    return;
  }
  const { promptId } = message;
  const emit = (event: EngineEvent, transfer: ArrayBuffer[] = []) => send({ type: 'event', promptId, event }, transfer);
  Atomics.store(flag, 0, 0);
  const previews: Promise<void>[] = [];
  try {
    const prompt = asApiPrompt(parseJson(message.promptText, 'the prompt'));
    const extra = message.extraPngInfoText ? (parseJson(message.extraPngInfoText, 'extra_pnginfo') as Record<string, Json>) : undefined;
    const result = await executor.execute(
      { promptId, prompt, promptText: message.promptText, extraPngInfo: extra, targets: message.targets },
      {
        start: () => emit({ name: 'execution_start' }),
        cached: (nodes) => emit({ name: 'execution_cached', nodes }),
        executing: (node) => emit({ name: 'executing', node }),
        progress: (node, value, max, preview) => {
          emit({ name: 'progress', node, value, max });
          if (preview) {
            previews.push(
              encodeJpegPreview(preview, 512).then((jpeg) => {
                const bytes = new Uint8Array(jpeg);
                emit({ name: 'preview', node, width: preview.width, height: preview.height, jpeg: bytes }, [bytes.buffer]);
              }),
            );
          }
        },
        executed: (node, output) => emit({ name: 'executed', node, output }),
      },
      () => Atomics.load(flag, 0) !== 0,
    );
    await Promise.allSettled(previews);
    send({ type: 'done', promptId, result });
  } catch (err) {
    const error = err as Error;
    send({
      type: 'done',
      promptId,
      result: {
        status: 'error',
        outputs: {},
        failure: { nodeId: '', nodeType: '', message: error.message, type: (error as { code?: string }).code ?? error.name, traceback: (error.stack ?? '').split('\n'), executed: [] },
      },
    });
  }
}

main().catch((err: unknown) => send({ type: 'fatal', message: (err as Error).stack ?? String(err) }));
