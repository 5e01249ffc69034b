/**
 * The metrics endpoint: `GET /metrics` (and `HEAD`) in Prometheus text format on HOST:PORT; another
 * method there is 405, any other path 404. A request may name the path alone or, as a proxy
 * forwards it, the absolute URL.
 *
 * A scraper must never keep the data path from stopping or handing over: connections are bounded
 * (MAX_CONNECTIONS, beyond which new ones are closed at once), a request must arrive within
 * REQUEST_TIMEOUT_MS, an idle keep-alive connection goes after KEEP_ALIVE_MS, and
 * `closeMetrics` closes the connections still open along with the server (Node's `close` alone
 * waits for them, and one that never finished its request kept the process alive for good).
 *
 * Nor must scrapers cost the data path more than one rendering at a time: requests that come
 * while one is being rendered (many scrapers at once, `run`'s engine answering over IPC) share it,
 * and a connection with more than MAX_PIPELINED requests unanswered is closed. Node parses every
 * request a read holds before the first is answered: one 60 KB write of pipelined requests was
 * 1,800 renderings in one go, which held released frames up for most of a second and queued
 * their answers in memory for a client that never read them.
 */

import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** What is served: a prom-client Registry, or anything that writes the same text. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Connections served at once; Prometheus uses one per target. */
const MAX_CONNECTIONS = 32;
/** Time for a request's headers and whole request to arrive. */
const REQUEST_TIMEOUT_MS = 5000;
/** An idle keep-alive connection is closed after this (Prometheus scrapes every 15 s or so, and reconnects). */
const KEEP_ALIVE_MS = 5000;
/** Requests a connection may have unanswered (pipelined); Prometheus sends one at a time. */
export const MAX_PIPELINED = 4;

/** `source.metrics()`, with callers that come while a rendering is in flight sharing it. */
function sharedRendering(source: MetricsSource): () => Promise<string> {
  let inFlight: Promise<string> | null = null;
  return () => {
    if (inFlight === null) {
      inFlight = source.metrics();
      const done = (): void => {
        inFlight = null;
      };
      inFlight.then(done, done);
    }
    return inFlight;
  };
}

/** The path of a request line's target, whether origin form (`/metrics?x`) or absolute (`http://host/metrics`). */
function pathOf(target: string): string {
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  const path = absolute === null ? target : target.slice(absolute[0].length);
  return path.split('?')[0] || '/';
}

/** Serves `registry`; resolves with the server once listening (rejects with the system error). */
export function serveMetrics(registry: MetricsSource, host: string, port: number): Promise<Server> {
  const render = sharedRendering(registry);
  const unanswered = new WeakMap<Socket, number>();
  const server = createServer({
    requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_MS,
    // How often those timeouts are checked (30 s by default).
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    const socket = req.socket;
    const waiting = (unanswered.get(socket) ?? 0) + 1;
    if (waiting > MAX_PIPELINED || socket.destroyed) {
      socket.destroy();
      return;
    }
    unanswered.set(socket, waiting);
    res.once('close', () => unanswered.set(socket, (unanswered.get(socket) ?? 1) - 1));
    if (pathOf(req.url ?? '') !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    // Node leaves the body out of a HEAD response by itself.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed: GET /metrics\n');
      return;
    }
    render().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Stops serving and closes every connection still open (see the module header). */
export function closeMetrics(server: Server): void {
  server.close();
  server.closeAllConnections();
}
