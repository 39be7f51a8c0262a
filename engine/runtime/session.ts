import * as ort from 'onnxruntime-node';
import type { BuiltModel } from '../onnx/index.ts';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface SessionOptions {
  readonly provider?: ExecutionProvider;
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Extra onnxruntime session config entries (e.g. `session.disable_prepacking`). */
  readonly config?: Readonly<Record<string, string>>;
}

/**
 * Creates an onnxruntime session for a built graph, handing it the weights as in-memory external data.
 * onnxruntime copies them while the session is created, so the buffers are garbage once this returns.
 */
export async function createSession(model: BuiltModel, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const externalData = model.weights.map((w) => ({ path: w.location, data: w.source.load() }));
  return ort.InferenceSession.create(model.bytes, {
    externalData,
    executionProviders: [options.provider ?? 'cpu'],
    graphOptimizationLevel: options.optimization ?? 'all',
    ...(options.config ? { extra: { session: options.config } } : {}),
  });
}

export { ort };
