/**
 * The raw WebSocket endpoint `/ws?clientId=…` (also `/api/ws`) with ComfyUI's protocol, so its clients work
 * unchanged: JSON `{type, data}` messages, a first `status` carrying `sid`, the `feature_flags` exchange on the
 * client's first message, and binary previews (type 1 with format 1 = JPEG, or type 4 with metadata for clients
 * that announced `supports_preview_metadata`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { originAllowed } from '../http/origin.ts';
import { statusData, type EventHub, type HubPreview, type WireJson } from './hub.ts';

const PREVIEW_IMAGE = 1;
const PREVIEW_IMAGE_WITH_METADATA = 4;
const FORMAT_JPEG = 1;
/** A client this far behind gets no more previews until it catches up (messages are always sent). */
const PREVIEW_BACKLOG_BYTES = 4 * 1024 * 1024;

interface Client {
  readonly socket: WebSocket;
  previewMetadata: boolean;
}

function previewFrame(p: HubPreview, withMetadata: boolean): Buffer {
  if (!withMetadata) {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(PREVIEW_IMAGE, 0);
    header.writeUInt32BE(FORMAT_JPEG, 4);
    return Buffer.concat([header, p.jpeg]);
  }
  const meta = Buffer.from(JSON.stringify({ node_id: p.nodeId, display_node_id: p.nodeId, parent_node_id: null, real_node_id: p.nodeId, prompt_id: p.promptId, image_type: 'image/jpeg' }));
  const header = Buffer.alloc(8);
  header.writeUInt32BE(PREVIEW_IMAGE_WITH_METADATA, 0);
  header.writeUInt32BE(meta.length, 4);
  return Buffer.concat([header, meta, p.jpeg]);
}

export function attachWs(http: HttpServer, hub: EventHub, features: () => { [key: string]: WireJson }): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const clients = new Map<string, Client>();
  const sendText = (socket: WebSocket, type: string, data: WireJson) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type, data }));
  };

  const connect = (socket: WebSocket, clientId: string) => {
    // A reconnecting client takes over its id; the older socket stops receiving its messages.
    const client: Client = { socket, previewMetadata: false };
    clients.set(clientId, client);
    let first = true;
    socket.on('message', (raw, isBinary) => {
      if (!first || isBinary) return;
      first = false;
      try {
        const message = JSON.parse(raw.toString()) as { type?: unknown; data?: { supports_preview_metadata?: unknown } };
        if (message.type !== 'feature_flags') return;
        client.previewMetadata = message.data?.supports_preview_metadata === true;
        sendText(socket, 'feature_flags', features());
      } catch {
        // Anything else a client sends is ignored, as ComfyUI does.
      }
    });
    socket.on('close', () => {
      if (clients.get(clientId) === client) clients.delete(clientId);
    });
    const state = hub.connectionState();
    sendText(socket, 'status', statusData(state.queueRemaining, clientId));
    const r = state.running;
    if (r?.node && r.clientId === clientId) sendText(socket, 'executing', { node: r.node, display_node: r.node, prompt_id: r.promptId });
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/socket.io/')) return; // socket.io's own upgrade
    if (url.pathname !== '/ws' && url.pathname !== '/api/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!originAllowed(req.headers)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    const clientId = url.searchParams.get('clientId') || randomUUID().replaceAll('-', '');
    wss.handleUpgrade(req, socket, head, (ws) => connect(ws, clientId));
  });

  hub.subscribe({
    message(m) {
      const text = JSON.stringify({ type: m.type, data: m.data });
      const targets = m.clientId === undefined ? [...clients.values()] : [clients.get(m.clientId)].filter((c) => c !== undefined);
      for (const c of targets) if (c.socket.readyState === WebSocket.OPEN) c.socket.send(text);
    },
    preview(p) {
      const targets = p.clientId === undefined ? [...clients.values()] : [clients.get(p.clientId)].filter((c) => c !== undefined);
      for (const c of targets) {
        if (c.socket.readyState === WebSocket.OPEN && c.socket.bufferedAmount < PREVIEW_BACKLOG_BYTES) c.socket.send(previewFrame(p, c.previewMetadata));
      }
    },
  });
  return wss;
}
