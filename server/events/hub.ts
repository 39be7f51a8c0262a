/**
 * Where the job runner's events meet the transports (socket.io and the raw `/ws`): each message is ComfyUI's
 * `{type, data}`, addressed to the client that queued the job, or to everyone when it has no client id.
 */

/** JSON without bigints: what socket.io and `JSON.stringify` can carry. */
export type WireJson = null | boolean | number | string | WireJson[] | { [key: string]: WireJson };

export interface HubMessage {
  readonly type: string;
  readonly data: { [key: string]: WireJson };
  /** The recipient's client id; undefined sends to every connected client. */
  readonly clientId?: string;
}

export interface HubPreview {
  readonly promptId: string;
  readonly nodeId: string;
  readonly jpeg: Uint8Array;
  readonly clientId?: string;
}

export interface HubListener {
  message(message: HubMessage): void;
  preview(preview: HubPreview): void;
}

/** What a client is told when it connects: the queue size, and the node running for it (reconnects). */
export interface ConnectionState {
  readonly queueRemaining: number;
  readonly running?: { readonly promptId: string; readonly clientId?: string; readonly node?: string };
}

export class EventHub {
  private readonly listeners = new Set<HubListener>();

  constructor(readonly connectionState: () => ConnectionState) {}

  subscribe(listener: HubListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(message: HubMessage): void {
    for (const l of this.listeners) l.message(message);
  }

  preview(preview: HubPreview): void {
    for (const l of this.listeners) l.preview(preview);
  }
}

/** `status` data as ComfyUI sends it (`sid` only in the first message to a new connection). */
export function statusData(queueRemaining: number, sid?: string): { [key: string]: WireJson } {
  const data: { [key: string]: WireJson } = { status: { exec_info: { queue_remaining: queueRemaining } } };
  if (sid !== undefined) data.sid = sid;
  return data;
}

/** Lossless JSON made wire-safe: bigints (seeds in node inputs) become decimal strings. */
export function toWire(value: unknown): WireJson {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toWire);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
  return String(value);
}
