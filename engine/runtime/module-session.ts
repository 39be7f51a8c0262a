/**
 * One model module (a text encoder, the UNet, a VAE half) as a lazily created onnxruntime session. The graph
 * plan decides which weights are constants, fed inputs or carry LoRA branches; changing the plan rebuilds the
 * session, changing fed values does not.
 */
import type { Graph } from '../onnx/index.ts';
import type { GraphPlan } from '../models/layers.ts';
import type { ort} from './session.ts';
import { createSession, type SessionOptions } from './session.ts';

export type GraphFactory = (plan: GraphPlan) => Graph;

export interface PlanSpec {
  /** Identifies the plan: equal keys mean the same graph, so no rebuild. */
  readonly key: string;
  readonly plan: GraphPlan;
}

const BASE_PLAN: PlanSpec = { key: 'base', plan: {} };

export class ModuleSession {
  private session: ort.InferenceSession | undefined;
  private current: PlanSpec = BASE_PLAN;
  private extraFeeds: Record<string, ort.Tensor> = {};

  constructor(
    readonly name: string,
    private readonly factory: GraphFactory,
    private readonly options: SessionOptions,
  ) {}

  /** Switches to another plan; the session is rebuilt on the next run only if the plan differs. */
  async usePlan(spec: PlanSpec = BASE_PLAN): Promise<void> {
    if (spec.key === this.current.key && this.session) return;
    await this.release();
    this.current = spec;
    this.extraFeeds = {};
  }

  /** Values fed on every run besides the caller's (fed weights, LoRA branch factors and scales). */
  setFeeds(feeds: Record<string, ort.Tensor>): void {
    Object.assign(this.extraFeeds, feeds);
  }

  async ensure(): Promise<ort.InferenceSession> {
    if (this.session) return this.session;
    this.session = await createSession(this.factory(this.current.plan).build(), this.options);
    return this.session;
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    const session = await this.ensure();
    return session.run({ ...this.extraFeeds, ...feeds });
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.release();
  }
}
