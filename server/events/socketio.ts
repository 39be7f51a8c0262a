/**
 * socket.io transport. A client names itself with `auth: { clientId }` (or `?clientId=`), else its socket id
 * is its client id; the first `status` message carries it as `sid`, to send as `client_id` with POST /prompt.
 * Events are ComfyUI's message types with the same data; step previews arrive as `preview` events carrying
 * the JPEG bytes.
 */
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { originAllowed } from '../http/origin.ts';
import { statusData, type EventHub } from './hub.ts';

const room = (clientId: string) => `client:${clientId}`;

export function attachSocketIo(http: HttpServer, hub: EventHub): Server {
  const io = new Server(http, {
    // The raw /ws endpoint shares the HTTP server: leave upgrades that are not socket.io's alone.
    destroyUpgrade: false,
    maxHttpBufferSize: 64 * 1024,
    allowRequest: (req, callback) => {
      const allowed = originAllowed(req.headers);
      callback(allowed ? null : 'cross-origin request refused', allowed);
    },
  });
  io.on('connection', (socket) => {
    const fromAuth = (socket.handshake.auth as { clientId?: unknown }).clientId;
    const fromQuery = socket.handshake.query.clientId;
    const clientId = typeof fromAuth === 'string' && fromAuth ? fromAuth : typeof fromQuery === 'string' && fromQuery ? fromQuery : socket.id;
    void socket.join(room(clientId));
    const state = hub.connectionState();
    socket.emit('status', statusData(state.queueRemaining, clientId));
    const r = state.running;
    if (r?.node && r.clientId === clientId) socket.emit('executing', { node: r.node, display_node: r.node, prompt_id: r.promptId });
  });
  hub.subscribe({
    message(m) {
      (m.clientId === undefined ? io : io.to(room(m.clientId))).emit(m.type, m.data);
    },
    preview(p) {
      const data = { prompt_id: p.promptId, node: p.nodeId, image_type: 'image/jpeg', image: Buffer.from(p.jpeg) };
      // Previews are disposable: a client that is behind skips them rather than queueing more.
      (p.clientId === undefined ? io.volatile : io.volatile.to(room(p.clientId))).emit('preview', data);
    },
  });
  return io;
}
