/**
 * Execution provider selection with a clean fallback: `cpu` always works; `webgpu` needs a real GPU adapter
 * (the CPU build of onnxruntime-node ships Dawn), `cuda` needs CUDA libraries the npm package does not carry.
 * A provider that cannot start is reported once, with why, and the CPU is used instead.
 */
import { InvalidInputError } from '../errors.ts';
import { Graph, ops } from '../onnx/index.ts';
import { ort, type ExecutionProvider } from './session.ts';

export const PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda'];

export interface ProviderChoice {
  readonly requested: ExecutionProvider;
  readonly provider: ExecutionProvider;
  /** Why the requested provider is not used, when it is not. */
  readonly fallbackReason?: string;
}

export function parseProvider(value: string | undefined): ExecutionProvider {
  const v = (value ?? 'cpu').toLowerCase();
  if ((PROVIDERS as readonly string[]).includes(v)) return v as ExecutionProvider;
  throw new InvalidInputError(`unknown execution provider "${value}"; choose one of ${PROVIDERS.join(', ')}`);
}

/** A one-node model used to check that a provider can actually create and run a session. */
function probeModel(): Uint8Array {
  const g = new Graph('probe');
  const x = g.input('x', 'float32', [1, 4]);
  g.output(ops.add(x, x), 'y');
  return g.build().bytes;
}

const checked = new Map<ExecutionProvider, Promise<ProviderChoice>>();

export function chooseProvider(requested: ExecutionProvider): Promise<ProviderChoice> {
  let choice = checked.get(requested);
  if (!choice) {
    choice = probe(requested);
    checked.set(requested, choice);
  }
  return choice;
}

async function probe(requested: ExecutionProvider): Promise<ProviderChoice> {
  if (requested === 'cpu') return { requested, provider: 'cpu' };
  try {
    const session = await ort.InferenceSession.create(probeModel(), { executionProviders: [requested] });
    await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
    await session.release();
    return { requested, provider: requested };
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    const hint =
      requested === 'cuda'
        ? 'onnxruntime-node from npm carries no CUDA libraries here; install them as onnxruntime documents, or use webgpu'
        : 'WebGPU needs a real GPU adapter (Vulkan/Metal/D3D12); software renderers are refused';
    return { requested, provider: 'cpu', fallbackReason: `${requested} is not available (${why}); ${hint}. Using the CPU.` };
  }
}
