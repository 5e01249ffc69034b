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
 *
 * Speed: `get` remembers the entry it returned last. That entry is the most recently used one
 * until another key is looked up or the table changes, so a repeated lookup of the same key can
 * skip `lru-cache` (whose `get` costs ~60 ns here, an options object and a move to the tail that
 * is then a no-op) without changing the eviction order. The comparator looks the same key up
 * twice in a row whenever the two guests' output for one connection arrives back to back.
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
  /** The most recently used entry and its key, or undefined and '' (see the module header). */
  private recent: T | undefined = undefined;
  private recentKey = '';

  constructor(
    max: number,
    private readonly onEvict: (entry: T, key: string, reason: EvictionReason) => void,
  ) {
    this.cache = new LRUCache<string, T>({
      max,
      // Every removal (evict, delete, sweep) passes here.
      dispose: (entry, key, reason) => {
        this.forgetRecent();
        if (reason === 'evict') onEvict(entry, key, 'full');
      },
    });
  }

  /** The entry under `key` (now the most recently used), or undefined. */
  get(key: string): T | undefined {
    if (key === this.recentKey) return this.recent;
    const entry = this.cache.get(key);
    if (entry !== undefined) {
      this.recent = entry;
      this.recentKey = key;
    }
    return entry;
  }

  /** Adds `entry` under `key`; when the table is full the least recently used entry is evicted first. */
  add(key: string, entry: T): void {
    this.cache.set(key, entry);
    this.recent = entry;
    this.recentKey = key;
  }

  /** Removes `key` without calling `onEvict`. */
  delete(key: string): void {
    this.cache.delete(key);
  }

  private forgetRecent(): void {
    this.recent = undefined;
    this.recentKey = '';
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
