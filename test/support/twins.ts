/**
 * Test harness for comparator scenarios: a guest at 10.0.0.2 (PVM and SVM twins share address
 * and MAC) talking to a client at 10.0.0.1, frames built with the wire emitters, and a recorder
 * of every action, so a scenario reads as a specification:
 *
 *   const t = new Twins();
 *   t.primary(t.out({ seq: 1000, payload: 'hello' }));
 *   t.secondary(t.out({ seq: 1000, payload: 'hello' }));
 *   assert.deepEqual(t.releasedPayloads(), ['hello']);
 */

import { createComparator, decodeFrame, Frame, TCP_ACK, TCP_PSH, TCP_SYN, type Action, type Comparator, type ComparatorConfig, type MismatchReason } from '../../compare/index.js';
import { emitTcp, emitUdp, type TcpFields, type UdpFields } from '../../compare/wire/emit.js';

export const GUEST = '10.0.0.2';
export const CLIENT = '10.0.0.1';
export const GUEST_PORT = 80;
export const CLIENT_PORT = 40000;

const text = new TextDecoder();

export class Twins {
  readonly c: Comparator;
  readonly actions: Action[] = [];
  now = 0;

  constructor(config: Partial<ComparatorConfig> = {}) {
    this.c = createComparator(config);
  }

  /** A guest output TCP segment (guest -> client); defaults: ACK|PSH, ack 5000. */
  out(f: Partial<Omit<TcpFields, 'payload'>> & { payload?: string | Uint8Array }): Uint8Array {
    return emitTcp({
      src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT, seq: 0, ack: 5000,
      flags: (f.payload !== undefined && f.payload.length > 0 ? TCP_PSH : 0) | TCP_ACK,
      ...f,
    });
  }

  /** A client TCP segment (client -> guest); defaults: ACK, seq 5000. */
  in(f: Partial<Omit<TcpFields, 'payload'>> & { payload?: string | Uint8Array }): Uint8Array {
    return emitTcp({ src: CLIENT, dst: GUEST, srcPort: CLIENT_PORT, dstPort: GUEST_PORT, seq: 5000, ack: 0, flags: TCP_ACK, ...f });
  }

  /** A guest output UDP datagram to the client, port 53 -> 5353 by default. */
  udp(f: Partial<UdpFields>): Uint8Array {
    return emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 5353, ...f });
  }

  /** Both guests answer the client's SYN with a SYN-ACK of initial sequence number `isn`; the handshake is released. */
  established(isn: number): void {
    const synAck = this.out({ seq: isn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } });
    this.primary(synAck);
    this.secondary(synAck);
  }

  primary(frame: Uint8Array, at = this.now): Action[] {
    return this.feed('primary', frame, at);
  }

  secondary(frame: Uint8Array, at = this.now): Action[] {
    return this.feed('secondary', frame, at);
  }

  client(frame: Uint8Array, at = this.now): Action[] {
    return this.feed('client', frame, at);
  }

  /** Advances the caller's clock to `at`, calling `advance` at every deadline on the way. */
  advanceTo(at: number): Action[] {
    const got: Action[] = [];
    for (let d = this.c.nextDeadline(); d !== undefined && d <= at; d = this.c.nextDeadline()) {
      this.now = Math.max(this.now, d);
      const a = this.c.advance(this.now);
      got.push(...a);
      this.actions.push(...a);
      if (this.c.nextDeadline() === d) break;
    }
    this.now = at;
    return got;
  }

  checkpointDone(): Action[] {
    const a = this.c.checkpointDone(this.now);
    this.actions.push(...a);
    return a;
  }

  /** The request ended without a checkpoint (no controller can take one). */
  resynchronize(): Action[] {
    const a = this.c.resynchronize(this.now);
    this.actions.push(...a);
    return a;
  }

  /** `advanceTo` with every checkpoint request ended at once by a resynchronisation, as without a controller. */
  advanceResynchronizing(at: number): void {
    for (let d = this.c.nextDeadline(); d !== undefined && d <= at; d = this.c.nextDeadline()) {
      this.advanceTo(d);
      if (this.c.checkpointPending) this.resynchronize();
      if (this.c.nextDeadline() === d) break;
    }
    this.advanceTo(at);
    if (this.c.checkpointPending) this.resynchronize();
  }

  private feed(side: 'client' | 'primary' | 'secondary', frame: Uint8Array, at: number): Action[] {
    this.now = at;
    const a = this.c.ingest(side, frame, at);
    this.actions.push(...a);
    return a;
  }

  /** Frames released to the client so far, in order. */
  released(): Uint8Array[] {
    return this.actions.flatMap((a) => (a.kind === 'release' ? [a.frame] : []));
  }

  /** Payloads of released frames as text ('' for none). */
  releasedPayloads(): string[] {
    return this.released().map(payloadText);
  }

  mismatchReasons(): MismatchReason[] {
    return this.actions.flatMap((a) => (a.kind === 'mismatch' ? [a.mismatch.reason] : []));
  }

  checkpoints(): MismatchReason[] {
    return this.actions.flatMap((a) => (a.kind === 'checkpoint' ? [a.reason] : []));
  }

  /** Frames delivered to `to`, in order. */
  delivered(to: 'primary' | 'secondary'): Uint8Array[] {
    return this.actions.flatMap((a) => (a.kind === 'deliver' && a.to === to ? [a.frame] : []));
  }
}

/** The transport payload of an Ethernet frame as text. */
export function payloadText(frame: Uint8Array): string {
  const f = decodeFrame(frame);
  if (!(f instanceof Frame)) throw new Error(`test frame does not decode: ${String(f)}`);
  return text.decode(f.bytes.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength));
}

/** `n` bytes of a deterministic pattern starting at stream offset `from`, as text of printable characters. */
export function pattern(from: number, n: number): string {
  let s = '';
  for (let i = from; i < from + n; i++) s += String.fromCharCode(33 + ((i * 7 + (i >> 8)) % 90));
  return s;
}
