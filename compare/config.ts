/**
 * The comparator's settings, their defaults (QEMU colo-compare's where it has one) and their
 * validation. A bad setting is a programmer or configuration error: `resolveConfig` throws a
 * `ConfigError` whose `code` is stable and whose message names the setting and what it accepts.
 */

import type { BytesEqual } from './match/bytes-equal.js';
import { jsBytesEqual } from './match/bytes-equal.js';
import { HEADER_FIELDS, type HeaderField } from './match/headers.js';

/**
 * How the secondary's TCP sequence numbers relate to the primary's.
 * - `translate`: the SVM's output carries its own initial sequence numbers and timestamps; the
 *   comparator learns the offsets from the handshakes, maps SVM output into the PVM's space and
 *   rewrites client frames for the SVM (used by `run`).
 * - `pre-translated`: QEMU's filter-rewriter already mapped SVM output after the handshake; only
 *   the SVM's SYN and SYN-ACK still carry its own sequence number (used by `compare`).
 */
export type SequenceMode = 'translate' | 'pre-translated';

export interface ComparatorConfig {
  mode: SequenceMode;
  /** A frame held longer than this forces a checkpoint (QEMU `compare_timeout`, 3000). */
  compareTimeoutMs: number;
  /** Held frames are checked for expiry at most this often (QEMU `expired_scan_cycle`, 1000). */
  scanIntervalMs: number;
  /** Frames one side of one connection may hold before a checkpoint (QEMU `max_queue_size`, 1024). */
  maxQueueFrames: number;
  /** Bytes one side of one connection may hold before a checkpoint. */
  maxQueueBytes: number;
  /**
   * Bytes of primary frames held across all connections before a checkpoint (`queue_full`, on
   * the connection holding the oldest): the bound on memory when the SVM falls silent on many
   * connections at once, none of which reaches its own limit before the timeout.
   */
  maxHeldBytes: number;
  /** Connections tracked at once; beyond it one not used lately is evicted (second chance, flow/table.ts). */
  maxConnections: number;
  /**
   * An open connection with no frames for this long is forgotten (in translate mode an
   * established one whose SVM numbers differ from the PVM's after at least TRANSLATED_IDLE_MS).
   */
  idleTimeoutMs: number;
  /**
   * A closed (FIN both ways, or RST) connection is kept this long for late retransmissions, and
   * at least `compareTimeoutMs`, so that the other guest's copy of its last frames can still match.
   */
  closedLingerMs: number;
  /** Header fields compared besides the payload (none by default; see match/headers.ts). */
  compareHeaders: readonly HeaderField[];
  /** Byte equality used by every comparison (front ends pass a Buffer.compare-based one). */
  bytesEqual: BytesEqual;
  /**
   * The caller promises never to change or reuse the bytes of a primary or secondary frame after
   * handing it to `ingest` (true when every frame is a view into a fresh socket or file read that
   * nothing writes to). The core then keeps views of those frames instead of copies: a held
   * primary frame is released as the very array ingested, and secondary bytes waiting for the
   * primary's are the secondary frame's own. Off by default: the core copies what it keeps. The
   * price of a view is that it keeps the caller's whole buffer alive while the frame waits.
   * Client frames are still copied where they are rewritten for the SVM (translate mode).
   */
  framesImmutable: boolean;
}

export const DEFAULT_CONFIG: Readonly<ComparatorConfig> = {
  mode: 'pre-translated',
  compareTimeoutMs: 3000,
  scanIntervalMs: 1000,
  maxQueueFrames: 1024,
  maxQueueBytes: 16 * 1024 * 1024,
  maxHeldBytes: 256 * 1024 * 1024,
  maxConnections: 65536,
  idleTimeoutMs: 300_000,
  closedLingerMs: 10_000,
  compareHeaders: [],
  bytesEqual: jsBytesEqual,
  framesImmutable: false,
};

/** A setting that cannot be used. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'config.invalid';
}

function positiveInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`comparator setting ${name} must be an integer >= ${min} (got ${value})`);
}

/** Fills in defaults and checks every setting; throws ConfigError naming the first bad one. */
export function resolveConfig(partial: Partial<ComparatorConfig> = {}): ComparatorConfig {
  const c: ComparatorConfig = { ...DEFAULT_CONFIG, ...partial };
  if (c.mode !== 'translate' && c.mode !== 'pre-translated') {
    throw new ConfigError(`comparator setting mode must be translate or pre-translated (got ${String(c.mode)})`);
  }
  positiveInteger('compareTimeoutMs', c.compareTimeoutMs, 1);
  positiveInteger('scanIntervalMs', c.scanIntervalMs, 1);
  positiveInteger('maxQueueFrames', c.maxQueueFrames, 1);
  positiveInteger('maxQueueBytes', c.maxQueueBytes, 1);
  positiveInteger('maxHeldBytes', c.maxHeldBytes, 1);
  positiveInteger('maxConnections', c.maxConnections, 1);
  positiveInteger('idleTimeoutMs', c.idleTimeoutMs, 1);
  positiveInteger('closedLingerMs', c.closedLingerMs, 0);
  for (const f of c.compareHeaders) {
    if (!(HEADER_FIELDS as readonly string[]).includes(f)) {
      throw new ConfigError(`comparator setting compareHeaders: unknown field ${String(f)} (accepted: ${HEADER_FIELDS.join(', ')})`);
    }
  }
  if (typeof c.bytesEqual !== 'function') throw new ConfigError('comparator setting bytesEqual must be a function');
  if (typeof c.framesImmutable !== 'boolean') throw new ConfigError(`comparator setting framesImmutable must be true or false (got ${String(c.framesImmutable)})`);
  return c;
}
