/**
 * ComfyUI's default anti-CSRF rule: when the server is reached through a loopback host name, a request that
 * carries an Origin must come from that same host (and port, when both name one). A web page elsewhere then
 * cannot queue jobs or read outputs through the user's browser. `Origin: null` (sandboxed frames, files) is
 * refused too.
 */
import type { IncomingHttpHeaders } from 'node:http';

function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Splits a Host header ("127.0.0.1:8188", "[::1]:8188", "localhost") into name and port. */
function splitHost(host: string): { hostname: string; port?: string } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host.trim());
  return m ? { hostname: m[1], port: m[2] } : { hostname: host };
}

export function originAllowed(headers: IncomingHttpHeaders): boolean {
  const host = headers.host;
  const origin = headers.origin;
  if (!host || origin === undefined) return true;
  const target = splitHost(host);
  if (!isLoopback(target.hostname)) return true;
  let from: URL;
  try {
    from = new URL(origin);
  } catch {
    return false;
  }
  if (from.hostname.toLowerCase() !== target.hostname.toLowerCase()) return false;
  return !from.port || !target.port || from.port === target.port;
}
