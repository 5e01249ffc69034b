/**
 * A hash index from IPv4 flow tuples (protocol, guest address, remote address, guest << 16 |
 * remote port: four 32-bit numbers) to values, so that the connection table finds a connection
 * without a string key being built and hashed for every frame.
 *
 * Open addressing with linear probing over a power-of-two number of slots, kept at most half
 * full (it doubles beyond that); a slot's four numbers lie side by side in one Int32Array, the
 * value in a parallel array. Deletion shifts the following entries of the probe run back, so
 * there are no tombstones and a lookup stops at the first empty slot. Written here because no
 * npm map takes a composite numeric key without building one per lookup.
 */

const EMPTY_SLOT = -1;
const MIN_SLOTS = 16;

export class TupleIndex<T> {
  /** 4 numbers per slot: protocol (EMPTY_SLOT when the slot is free), guest, remote, ports. */
  private keys = new Int32Array(MIN_SLOTS * 4).fill(EMPTY_SLOT);
  private values: (T | undefined)[] = new Array<T | undefined>(MIN_SLOTS).fill(undefined);
  private mask = MIN_SLOTS - 1;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The value under the tuple, or undefined. `protocol` is 0-255; the others any 32-bit numbers. */
  get(protocol: number, guest: number, remote: number, ports: number): T | undefined {
    const i = this.find(protocol, guest, remote, ports);
    return this.keys[i * 4] === EMPTY_SLOT ? undefined : this.values[i];
  }

  /** Sets the value under the tuple (replacing any). */
  set(protocol: number, guest: number, remote: number, ports: number, value: T): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.resize((this.mask + 1) * 2);
    const i = this.find(protocol, guest, remote, ports);
    const at = i * 4;
    if (this.keys[at] === EMPTY_SLOT) {
      this.keys[at] = protocol;
      this.keys[at + 1] = guest;
      this.keys[at + 2] = remote;
      this.keys[at + 3] = ports;
      this.count++;
    }
    this.values[i] = value;
  }

  /** Removes the tuple's entry, if any. */
  delete(protocol: number, guest: number, remote: number, ports: number): void {
    const keys = this.keys;
    const mask = this.mask;
    const i = this.find(protocol, guest, remote, ports);
    if (keys[i * 4] === EMPTY_SLOT) return;
    // Backward-shift deletion: each later entry of the run moves into the hole unless its home
    // slot lies (cyclically) after the hole, so that every entry stays reachable from its home.
    let hole = i;
    for (let j = (i + 1) & mask; keys[j * 4] !== EMPTY_SLOT; j = (j + 1) & mask) {
      const home = hash(keys[j * 4]!, keys[j * 4 + 1]!, keys[j * 4 + 2]!, keys[j * 4 + 3]!) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys.copyWithin(hole * 4, j * 4, j * 4 + 4);
        this.values[hole] = this.values[j];
        hole = j;
      }
    }
    keys[hole * 4] = EMPTY_SLOT;
    this.values[hole] = undefined;
    this.count--;
  }

  /** The slot holding the tuple, or the empty slot where its probe run ends. */
  private find(protocol: number, guest: number, remote: number, ports: number): number {
    const keys = this.keys;
    const mask = this.mask;
    const g = guest | 0;
    const r = remote | 0;
    const p = ports | 0;
    for (let i = hash(protocol, guest, remote, ports) & mask; ; i = (i + 1) & mask) {
      const at = i * 4;
      const slot = keys[at]!;
      if (slot === EMPTY_SLOT || (slot === protocol && keys[at + 1] === g && keys[at + 2] === r && keys[at + 3] === p)) return i;
    }
  }

  private resize(slots: number): void {
    const keys = this.keys;
    const values = this.values;
    this.keys = new Int32Array(slots * 4).fill(EMPTY_SLOT);
    this.values = new Array<T | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    this.count = 0;
    for (let i = 0; i < values.length; i++) {
      const at = i * 4;
      if (keys[at] !== EMPTY_SLOT) this.set(keys[at]!, keys[at + 1]!, keys[at + 2]!, keys[at + 3]!, values[i]!);
    }
  }
}

/** Mixes the four numbers (any 32-bit patterns) into a non-negative 31-bit hash (MurmurHash3's finalizer per word). */
function hash(protocol: number, guest: number, remote: number, ports: number): number {
  let h = mix(protocol ^ guest);
  h = mix(h ^ remote);
  h = mix(h ^ ports);
  return h & 0x7fffffff;
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return x ^ (x >>> 16);
}
