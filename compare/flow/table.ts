/**
 * The bounded connection table: at most `max` connections, aged by the caller's clock, and when
 * a new one arrives at a full table, one that has not been used for a while is evicted first.
 * The table never reads a clock: the owner records its time in `lastSeen`, and `sweep(now)`
 * removes every entry idle for longer than its own `idleLimit` (closed connections get a short
 * one). A sweep visits every entry, so it costs O(size); the comparator runs one per scan interval,
 * beside its own walk over `values()`. Both walk a plain Map of the entries, in the order they were
 * added: lru-cache's iterators cost ~0.23 us an entry here against ~0.02 for a Map's, and with
 * 65,000 connections the two walks took ~30 ms of a ~70 ms scan, once a second.
 *
 * Every removal other than `delete` goes through `onEvict` with the reason, so the owner can make
 * sure nothing it holds is lost (the comparator asks for a checkpoint and keeps the evicted
 * connection's held frames for release after it).
 *
 * Eviction is second chance (CLOCK), an approximation of least-recently-used: entries sit in an
 * `lru-cache` in the order they came in, a lookup only sets the entry's `used` flag, and a full
 * table looks at its oldest entry: one used since it was last looked at gets its flag cleared and
 * goes to the back, and the first one not used is evicted. Exact LRU order had to be updated on
 * every lookup, and finding the entry went through a string key: with 1,000 to 10,000 connections
 * the lookup and that update were about a third of the comparator core's time per frame pair
 * (64 and 1448-byte payloads). Now a lookup touches only the entry, found through `getIpv4` (a
 * tuple index, tuple-index.ts, for IPv4 flows: no key string is built) or `get` (any key). An
 * eviction in a table full of connections all in use clears every flag, O(size), but each flag
 * it clears was set by a lookup or an `add`: amortized, eviction costs O(1) per lookup.
 *
 * `get` and `getIpv4` also remember the entry they returned last, so the same connection looked up
 * twice in a row (both guests' output for it arriving back to back) skips the Map or the index.
 */

import { LRUCache } from 'lru-cache';
import { tupleOfKey } from './key.js';
import { TupleIndex } from './tuple-index.js';

/** What the table needs to know of an entry. */
export interface TableEntry {
  /** Caller time of the entry's last activity. */
  lastSeen: number;
  /** How long (ms) the entry may stay idle before a sweep removes it. */
  idleLimit: number;
  /** Set by every lookup that finds the entry; cleared when eviction passes over it (the table's own). */
  used: boolean;
}

export type EvictionReason = 'full' | 'idle';

export class ConnectionTable<T extends TableEntry> {
  /** Every entry, oldest (next to be looked at by eviction) first. */
  private readonly cache: LRUCache<string, T>;
  /** The same entries by key, in the order they were added: for lookups by key and for walks. */
  private readonly entries = new Map<string, T>();
  /** The entries of IPv4 keys, by the tuple their key encodes. */
  private readonly ipv4 = new TupleIndex<T>();
  /** The entry `get` returned last and its key, or undefined and ''. */
  private recent: T | undefined = undefined;
  private recentKey = '';
  /** The entry `getIpv4` returned last and its tuple, or undefined. */
  private recentIpv4: T | undefined = undefined;
  private recentProtocol = 0;
  private recentGuest = 0;
  private recentRemote = 0;
  private recentPorts = 0;

  constructor(
    private readonly max: number,
    private readonly onEvict: (entry: T, key: string, reason: EvictionReason) => void,
  ) {
    this.cache = new LRUCache<string, T>({
      max,
      // Every removal (evict, delete, sweep) passes here.
      dispose: (_entry, key) => {
        this.entries.delete(key);
        this.recent = undefined;
        this.recentKey = '';
        this.recentIpv4 = undefined;
        const t = tupleOfKey(key);
        if (t !== undefined) this.ipv4.delete(t[0], t[1], t[2], t[3]);
      },
    });
  }

  /** The entry under `key`, or undefined. */
  get(key: string): T | undefined {
    let entry: T | undefined;
    if (key === this.recentKey) {
      entry = this.recent;
    } else {
      entry = this.entries.get(key);
      if (entry !== undefined) {
        this.recent = entry;
        this.recentKey = key;
      }
    }
    if (entry !== undefined) entry.used = true;
    return entry;
  }

  /**
   * The entry whose IPv4 key encodes this tuple (protocol, guest and remote address, guest << 16
   * | remote port: see `FlowKeys.tuple`), or undefined.
   */
  getIpv4(protocol: number, guest: number, remote: number, ports: number): T | undefined {
    let entry = this.recentIpv4;
    if (entry === undefined || protocol !== this.recentProtocol || guest !== this.recentGuest || remote !== this.recentRemote || ports !== this.recentPorts) {
      entry = this.ipv4.get(protocol, guest, remote, ports);
      if (entry === undefined) return undefined;
      this.recentIpv4 = entry;
      this.recentProtocol = protocol;
      this.recentGuest = guest;
      this.recentRemote = remote;
      this.recentPorts = ports;
    }
    entry.used = true;
    return entry;
  }

  /** Adds `entry` under `key` (which must not be in the table); when the table is full, one is evicted first. */
  add(key: string, entry: T): void {
    if (this.cache.size >= this.max) this.evictOne();
    entry.used = true;
    this.cache.set(key, entry);
    this.entries.set(key, entry);
    const t = tupleOfKey(key);
    if (t !== undefined) this.ipv4.set(t[0], t[1], t[2], t[3], entry);
  }

  /** Removes `key` without calling `onEvict`. */
  delete(key: string): void {
    this.cache.delete(key);
  }

  /** Evicts (reason 'idle'), in the order they were added, every entry idle for longer than its `idleLimit` at `now`; returns how many. */
  sweep(now: number): number {
    const stale: [string, T][] = [];
    for (const [key, entry] of this.entries) if (now - entry.lastSeen > entry.idleLimit) stale.push([key, entry]);
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

  /** Every entry, in the order they were added. */
  values(): IterableIterator<T> {
    return this.entries.values();
  }

  /** Second chance: clears and requeues used entries from the oldest on, and evicts the first unused one. */
  private evictOne(): void {
    for (;;) {
      const oldest = this.cache.rentries().next();
      if (oldest.done === true) return;
      const [key, entry] = oldest.value as [string, T];
      if (entry.used) {
        entry.used = false;
        this.cache.get(key); // to the back of the queue
        continue;
      }
      this.cache.delete(key);
      this.onEvict(entry, key, 'full');
      return;
    }
  }
}
