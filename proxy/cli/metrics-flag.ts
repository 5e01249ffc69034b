/**
 * The `--metrics HOST:PORT` flag shared by the long-running commands (`compare`, `run`): parsing
 * it into a one-line usage error when malformed, and starting the endpoint, with the same
 * one-line error (after closing the engine) when the address cannot be listened on.
 */

import type { Server } from 'node:http';
import { serveMetrics, type MetricsSource } from '../metrics/http.js';
import { UsageError } from './errors.js';

export interface MetricsAddress {
  host: string;
  port: number;
  text: string;
}

/** Parses --metrics HOST:PORT for `command` (IPv6 hosts in brackets). */
export function parseMetricsAddress(command: string, text: string): MetricsAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new UsageError(`${command}: --metrics must be HOST:PORT with a port from 1 to 65535 (got "${text}")`);
  return { host: m[1] ?? m[2]!, port, text };
}

/** Serves `registry` at `at`; on failure runs `close` and throws a UsageError naming `command`. */
export async function startMetrics(command: string, registry: MetricsSource, at: MetricsAddress, close: () => Promise<void>): Promise<Server> {
  try {
    return await serveMetrics(registry, at.host, at.port);
  } catch (e) {
    await close();
    throw new UsageError(`${command}: --metrics: cannot listen on ${at.text}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The start-up line saying where the metrics are served. */
export function metricsLine(at: MetricsAddress): string {
  return `metrics: http://${at.text}/metrics`;
}
