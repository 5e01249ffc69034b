/**
 * The bounded connection table: at most `max` connections, the least recently used evicted first
 * when a new one arrives (the `lru-cache` package), and aged by the caller's clock. The table
 * never reads a clock: the owner records its time in `lastSeen`, and `sweep(now)` removes every
 * entry idle for longer than its own `idleLimit` (closed connections get a short one). A sweep
 * visits every entry, so it costs O(size); the comparator runs one per scan interval.
 *
 * Every removal other than `delete` goes through `onEvict` with the reason, so the owner can make
 * sure nothing it holds is lost (the comparator asks for a checkpoint and keeps the evicted
 * connection's held frames for release after it).
 */

import { LRUCache } from 'lru-cache';

/** What the table needs to know of an entry. */
export interface TableEntry {
  /** Caller time of the entry's last activity. */
  lastSeen: number;
  /** How long (ms) the entry may stay idle before a sweep removes it. */
  idleLimit: number;
}

export type EvictionReason = 'full' | 'idle';

export class ConnectionTable<T extends TableEntry> {
  private readonly cache: LRUCache<string, T>;

  constructor(
    max: number,
    private readonly onEvict: (entry: T, key: string, reason: EvictionReason) => void,
  ) {
    this.cache = new LRUCache<string, T>({
      max,
      dispose: (entry, key, reason) => {
        if (reason === 'evict') onEvict(entry, key, 'full');
      },
    });
  }

  /** The entry under `key` (now the most recently used), or undefined. */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** Adds `entry` under `key`; when the table is full the least recently used entry is evicted first. */
  add(key: string, entry: T): void {
    this.cache.set(key, entry);
  }

  /** Removes `key` without calling `onEvict`. */
  delete(key: string): void {
    this.cache.delete(key);
  }

  /** Evicts (reason 'idle') every entry idle for longer than its `idleLimit` at `now`; returns how many. */
  sweep(now: number): number {
    const stale: [string, T][] = [];
    for (const [key, entry] of this.cache.entries()) if (now - entry.lastSeen > entry.idleLimit) stale.push([key, entry]);
    for (const [key, entry] of stale) {
      this.cache.delete(key);
      this.onEvict(entry, key, 'idle');
    }
    return stale.length;
  }

  /** Number of connections in the table. */
  get size(): number {
    return this.cache.size;
  }

  /** Every entry, most recently used first. */
  values(): IterableIterator<T> {
    return this.cache.values();
  }
}
