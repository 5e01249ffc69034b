/**
 * Connecting to a socket endpoint that may not be listening yet (a peer process still starting):
 * retry while the path does not exist or the connection is refused, until a deadline. `alive` is
 * called before each attempt and throws to give up early (the peer process died).
 */

import { connect, type Socket } from 'node:net';
import type { Endpoint } from './endpoint.js';

/** Connects to `e` (a unix path or tcp host:port), retrying until `until` (a Date.now() time). */
export async function dialUntil(e: Endpoint, until: number, alive: () => void = () => {}): Promise<Socket> {
  for (;;) {
    alive();
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = e.kind === 'unix' ? connect(e.path) : connect(e.port, e.host);
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', (err) => {
          s.destroy();
          reject(err);
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > until) {
        throw new Error(`nobody listens on ${e.text} (${(err as Error).message})`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
