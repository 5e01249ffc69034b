/**
 * The comparator: the one object the three front ends drive. Frames go in with the side they
 * came from and the caller's time; `Action` values come out (see actions.ts for the guarantees).
 * Call order: any number of `ingest`, `advance`, `checkpointDone` and `resynchronize` calls with non-decreasing
 * times; `advance` at (or after) `nextDeadline()` so that timeouts fire. No clock, no I/O.
 *
 * Per connection (flow/key.ts keys both directions and both guests under one key):
 * - TCP output is compared by sequence range (match/tcp-stream.ts). A primary segment is released
 *   once every byte of it (and its FIN) matched the secondary's AND its acknowledgement number
 *   does not exceed the highest one the secondary has sent, i.e. the SVM has received the client
 *   data the PVM acknowledges. Until then it is held, not checkpointed. SYN and SYN-ACK are held
 *   until the other guest's arrives; their kinds and options (MSS, window scale, SACK-permitted,
 *   timestamps, ECN) must agree, data on them (Fast Open) is the stream's first bytes, and in
 *   `translate` mode they teach the sequence and timestamp offsets. The SVM's segments that come
 *   between the first handshake segment and the agreement wait for it (`TcpConnection.early`).
 *   Urgent data is compared by where the urgent pointers point (tcp.urgent). A segment sent in IP
 *   fragments is compared reassembled in its connection, the PVM's fragments released together.
 * - UDP, ICMP, other IP protocols and non-IP frames are compared message by message in FIFO order
 *   (match/datagram.ts); frames that do not decode are compared whole, in one shared flow. In
 *   translate mode a UDP or ping flow the guests open from different ports (echo identifiers) is
 *   one flow: their first datagrams are paired like active-open SYNs (rewrite/pairing.ts).
 * - Client frames are delivered to the PVM unchanged and to the SVM translated into its sequence
 *   space and, for such flows, to its port (translate mode), waiting if the translation is not
 *   known yet; an ICMP error about a guest's packet gets its quote translated so. A guest's ICMP
 *   error quoting a client packet is compared without the fields the core rewrote for the SVM.
 *
 * Verdicts: the first difference on a connection is a `mismatch`, and a `checkpoint` request
 * unless one is outstanding (requests coalesce until `checkpointDone` or `resynchronize`). A connection that
 * diverged compares nothing more and holds its primary frames until the checkpoint; other
 * connections go on releasing what they verify. A primary frame held, or a secondary message
 * waiting, longer than `compareTimeoutMs` is a `timeout`; a queue over its frame or byte limit is
 * `queue_full`; a full table evicting a connection that holds frames, has secondary output
 * waiting or (translate mode) an SVM offset is `table_full`, and a new connection (a SYN with a new ISN) on the ports of a closed
 * one that still does is `tcp.reused`: in both cases what comes next under that key waits behind
 * the old connection's held frames until the checkpoint. Primary
 * frames are never dropped: `checkpointDone` releases every held one in arrival order, discards
 * all secondary state, sets offsets to zero (the SVM is now a copy of the PVM) and restarts every
 * comparison from the primary's current position. Where no checkpoint can answer a request,
 * `resynchronize` ends it instead: only the connections that asked release what they hold and
 * go on from there, the SVM's state and queued output kept.
 */

import { LINKTYPE_ETHERNET } from './wire/link.js';
import { Frame, FrameDecoder, decodeFrame } from './wire/frame.js';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_OPTION_AO, TCP_OPTION_MD5, TCP_OPTION_MPTCP, TCP_RST, TCP_SYN, TCP_URG, tcpOptionKinds, type TcpView } from './wire/tcp.js';
import { UdpView } from './wire/udp.js';
import { IcmpView } from './wire/icmp.js';
import { Icmpv6View } from './wire/icmpv6.js';
import { seqAdd, seqGt, seqMax } from './wire/seq.js';
import type { WireError } from './wire/error.js';
import { readU16, readU32, toHex } from './wire/bytes.js';
import { rewriteU16, rewriteU32 } from './wire/checksum.js';
import { emitIcmpEcho, emitTcp, emitUdp } from './wire/emit.js';
import { formatIpv4 } from './wire/ipv4.js';
import { formatIpv6 } from './wire/ipv6.js';
import { quotedEchoRequest, quotedTransport, type QuotedTransport } from './wire/icmp-quote.js';
import { SlabCopier } from './wire/slab.js';
import { FRAGMENTS_KEY, SECONDARY_APART_PREFIX, UNDECODABLE_KEY, FlowKeys, describeKey, flowClassOf, flowKey, type FlowClass } from './flow/key.js';
import { ConnectionTable, type EvictionReason } from './flow/table.js';
import { HeldQueue, Fifo, type HeldFrame } from './decide/held.js';
import { WaitingSegments } from './decide/waiting.js';
import { Counters } from './decide/counters.js';
import { resolveConfig, type ComparatorConfig } from './config.js';
import type { EventCode, MismatchReason } from './events.js';
import { hexWindow, type Mismatch } from './match/mismatch.js';
import { MessageParts, compareMessages, messageParts, ownParts, wholeFrameParts, withoutClientRewrites } from './match/datagram.js';
import type { BytesEqual } from './match/bytes-equal.js';
import { NO_UNITS, TcpStreamMatch } from './match/tcp-stream.js';
import { CONNECTION_CONSTANT_FIELDS, headerSignature, type HeaderField } from './match/headers.js';
import { ipOptionsOf } from './match/ip-options.js';
import { AfterCheckpoint, FragmentReassembler, Reassembled, type FragmentOutcome } from './stream/fragments.js';
import { SequenceTranslation, learnFromHandshake, translateClientToSecondary } from './rewrite/translation.js';
import { ActiveOpenPairing, PairedOpen, guestPortOf, isPairableDatagram, learnFromPairedOpen } from './rewrite/pairing.js';
import { ActionList, type Action, type ActionSink, type Side } from './actions.js';

/** The handshake segment one guest sent: what must agree with the other guest's. */
class SynInfo {
  constructor(
    readonly synAck: boolean,
    readonly isn: number,
    readonly mss: number,
    readonly windowScale: number,
    readonly sackPermitted: boolean,
    readonly tsVal: number,
    /** The ECE and CWR flags: ECN negotiation (RFC 3168 §6.1.1). */
    readonly ecn: number,
    /**
     * The SYN's payload (TCP Fast Open, RFC 7413), null without: the secondary's a copy, which the
     * handshake places in the stream; the primary's a view of its held frame, already in it.
     */
    readonly data: Uint8Array | null,
    /** Which of TCP-MD5, TCP-AO and Multipath TCP it carries, as the option kinds they are, by name (see `describe`). */
    readonly extensions: string,
  ) {}

  static of(tcp: TcpView, data: Uint8Array | null): SynInfo {
    return new SynInfo(tcp.isAck, tcp.seq, tcp.mss, tcp.windowScale, tcp.sackPermitted, tcp.tsVal, tcp.flags & (TCP_ECE | TCP_CWR), data, extensionsOf(tcp));
  }

  /** True when the options that shape the connection agree: MSS, window scale, SACK-permitted, timestamps, ECN, signing and Multipath TCP. */
  agrees(o: SynInfo): boolean {
    return this.mss === o.mss && this.windowScale === o.windowScale && this.sackPermitted === o.sackPermitted &&
      (this.tsVal >= 0) === (o.tsVal >= 0) && this.ecn === o.ecn && this.extensions === o.extensions;
  }

  /** Its signing option, TCP-MD5 or TCP-AO, or ''. */
  get signature(): string {
    return this.extensions.includes('md5') ? 'TCP-MD5' : this.extensions.includes('ao') ? 'TCP-AO' : '';
  }

  describe(): string {
    const ecn = `${this.ecn & TCP_ECE ? ' ECE' : ''}${this.ecn & TCP_CWR ? ' CWR' : ''}`;
    return `${this.synAck ? 'SYN-ACK' : 'SYN'} mss ${this.mss} wscale ${this.windowScale} sackOK ${this.sackPermitted ? 1 : 0} ts ${this.tsVal >= 0 ? 1 : 0}${ecn}${this.extensions}`;
  }
}

/** ' md5', ' ao', ' mptcp' for each of those options `tcp` carries, in that order ('' for none). */
function extensionsOf(tcp: TcpView): string {
  if (tcp.headerLength === 20) return '';
  const kinds = tcpOptionKinds(tcp);
  return `${kinds.includes(TCP_OPTION_MD5) ? ' md5' : ''}${kinds.includes(TCP_OPTION_AO) ? ' ao' : ''}${kinds.includes(TCP_OPTION_MPTCP) ? ' mptcp' : ''}`;
}

/** Which limit a connection's `idleLimit` is: the configured one, or one of translate mode's longer ones (see `keepWhileTranslated`, `finish`). */
const IDLE_USUAL = 0;
const IDLE_TRANSLATED = 1;
const IDLE_CLOSED_TRANSLATED = 2;

/** State shared by every kind of connection. */
abstract class Connection {
  lastSeen: number;
  idleLimit: number;
  /** Which limit `idleLimit` is (IDLE_*): told apart by kind, never by value, which configuration can make equal. */
  idleKind = IDLE_USUAL;
  /** The connection table's second-chance flag (flow/table.ts). */
  used = true;
  /** Primary frames held, in the primary's order. */
  readonly held = new Fifo<HeldFrame>();
  heldBytes = 0;
  /**
   * Its primary frames have waited over LONG_WAIT_MS, so new ones are copied into the copier of
   * waiting flows (`Engine.keeper`); found by `hold` for the next frame, off the per-segment path.
   */
  primaryWaitsLong = false;
  /** Set at the first mismatch: nothing more is compared until the checkpoint. */
  diverged = false;
  /** The connection left the table; its held frames wait in the global queue for the checkpoint. */
  evicted = false;
  /**
   * Opened under the key of a connection that left the table holding frames or with secondary
   * output waiting (see `removed`): until the checkpoint already requested for that one, this one
   * compares nothing and holds every primary frame, so that none is released ahead of the earlier
   * connection's and no secondary output is matched against the wrong stream.
   */
  blocked = false;
  /** TCP: a FIN or RST was seen on it, so a SYN on its ports opens a new connection (see `connection`). */
  closing = false;
  /** Looked up since the last checkpoint: in the engine's `touched` set, to be reset by the next one. */
  touched = false;
  /**
   * Translate mode: the pairing that mapped the SVM's port of this guest-opened connection or UDP
   * flow to the PVM's, or null (same ports). The mapping is forgotten when the connection leaves
   * the table: a guest reusing that port later opens a new flow, which must pair afresh.
   */
  paired: PairedOpen | null = null;

  constructor(
    readonly key: string,
    readonly cls: FlowClass,
    now: number,
    idleLimit: number,
  ) {
    this.lastSeen = now;
    this.idleLimit = idleLimit;
  }

  /** The readable flow name, rebuilt from the key when needed (mismatches and events are rare). */
  get flow(): string {
    return describeKey(this.key);
  }

  /** Forgets secondary state after a checkpoint; held primary frames were released by the caller. */
  abstract resetAfterCheckpoint(): void;
  /** Caller time since which secondary output has been waiting for its primary counterpart, or -1. */
  abstract secondaryWaitingSince(): number;
  /** How many secondary segments or messages wait for their primary counterparts. */
  abstract secondaryWaitingCount(): number;
  /** Forgets the secondary output waiting for its primary counterparts (the caller keeps the count). */
  abstract dropSecondaryWaiting(): void;
}

/**
 * A client segment delivered to the SVM: where it starts and ends (client sequence space), the
 * bytes sent, and when it last went (a count of the connection's deliveries, see `redeliver`).
 */
class SentSegment {
  constructor(readonly start: number, readonly end: number, readonly frame: Uint8Array, public delivery: number) {}
}

/**
 * Translate mode: the client segments a connection has delivered to the SVM and it has not
 * acknowledged yet, in delivery order, with the re-delivery state that lives as long as they do
 * (made on first need: an idle connection carries none of it).
 */
class SentLog extends Fifo<SentSegment> {
  /** Client segments delivered so far, first deliveries and re-deliveries (see `SentSegment`). */
  deliveries = 0;
  /** The end of the segment a window update or a scan last delivered again, -1 when none waits for its ACK (see `Engine.redeliver`). */
  probeEnd = -1;
}

/** A connection whose SVM ACK `Engine.settle` looks at again at `at`: still at `ack`, and the same log. */
interface Settling {
  at: number;
  ack: number;
  log: SentLog;
}

/**
 * The tag of a TCP segment the PVM sent in IP fragments, held and compared reassembled: releasing
 * it releases the fragments, each with the caller's tag, in their arrival order.
 */
class FragmentGroup {
  constructor(
    readonly frames: readonly Uint8Array[],
    readonly tags: readonly unknown[],
  ) {}
}

/** A secondary segment that came before the handshakes were compared (see `TcpConnection.early`). */
class EarlySegment {
  constructor(
    readonly frame: Uint8Array,
    /** Its own sequence number, untranslated. */
    readonly seq: number,
    readonly fin: boolean,
    readonly rst: boolean,
    readonly payloadOffset: number,
    readonly payloadLength: number,
    /** Its urgent pointer when URG is set, else -1. */
    readonly urgentPointer: number,
    /** When it came, or when a resynchronisation timed it afresh. */
    public since: number,
  ) {}
}

/** The `EarlySegment`s of a connection in arrival order, and their payload bytes (bounded like any queue). */
class EarlySegments {
  readonly list: EarlySegment[] = [];
  bytes = 0;
  /** Kept once already by a resynchronisation (see `resynchronizeTcp`), and timed from it. */
  kept = false;

  push(e: EarlySegment): void {
    this.list.push(e);
    this.bytes += e.payloadLength;
  }
}

/** The end offset of a held SYN without payload: releasable once the handshake agrees, whatever `verified` is. */
const NO_SYN_DATA = NO_UNITS;

/**
 * How long a connection's output may wait (caller time) before what it keeps goes to the copier
 * of waiting flows (`Engine.keeper`): far above the microseconds to milliseconds one guest's
 * output normally trails the other's, far below the compare timeout.
 */
const LONG_WAIT_MS = 100;

/**
 * Translate mode: a guest's datagram on a flow with no output of either guest for this long, and
 * nothing waiting, may be the first of a new flow from a port the guest drew again (see
 * `datagramOpen`). Above the 1 s of a ping's requests, far below the seconds to minutes after which
 * a resolver draws a port of an earlier query again.
 */
const RESUME_QUIET_MS = 2000;

/** Whether `c`'s oldest held primary frame, if any, has waited LONG_WAIT_MS or less (see `Engine.keeper`). */
function primaryRecent(c: Connection, now: number): boolean {
  const h = c.held.peek();
  return h === undefined || now - h.since <= LONG_WAIT_MS;
}

/** The `end` of a held frame no verification can release: it waits for the checkpoint (`unassembledSegment`). */
const NEVER_COVERED = Number.POSITIVE_INFINITY;

/** Least caller time between two re-deliveries of client data to an SVM whose ACK makes no progress. */
const REDELIVER_GAP_MS = 2;
/** How long the SVM's ACK must rest behind the PVM's before a scan delivers the segment it lacks again (TCP's least RTO). */
const REDELIVER_STALL_MS = 200;
/** Duplicate ACKs (pure, same ACK, same window) that say the SVM lacks a segment: one alone may answer a copy it already had. */
const REDELIVER_DUP_ACKS = 2;
/**
 * Why `redeliver` is called: an SVM segment that moved its ACK; REDELIVER_DUP_ACKS duplicate ACKs;
 * a window update (a pure ACK that did not move it, its window changed); a scan; anything else.
 */
const REDELIVER_ACK_MOVED = 0;
const REDELIVER_DUP_ACKS_SEEN = 1;
const REDELIVER_WINDOW_UPDATE = 2;
const REDELIVER_SCAN = 3;
/** The SVM's ACK rested REDELIVER_SETTLE_MS at the end of a segment a window update or a scan sent again. */
const REDELIVER_SETTLED = 4;
const REDELIVER_NOTHING = 5;
/**
 * How long the SVM's ACK must rest at the end of a segment a window update or a scan delivered
 * again before the next segment it lacks goes too, starting a recovery: its own copies of the
 * later segments, were they still on their way (a slow SVM's queue), would have moved it by then.
 */
const REDELIVER_SETTLE_MS = 20;

class TcpConnection extends Connection {
  readonly match: TcpStreamMatch;
  /** Translate mode only (null otherwise): how the SVM's sequence space relates to the PVM's. */
  readonly translation: SequenceTranslation | null;
  /** The guests' handshake segments, until the handshake is compared (then dropped). */
  primarySyn: SynInfo | null = null;
  secondarySyn: SynInfo | null = null;
  handshakeDone = false;
  /** Highest acknowledgement number each guest has sent (client sequence space); -1 until one. */
  primaryAck = -1;
  secondaryAck = -1;
  /** Copies of client frames for the SVM, waiting for the sequence translation to be learned (made on first need). */
  toSecondary: Fifo<Uint8Array> | null = null;
  /**
   * Translate mode: client segments carrying data or FIN delivered to the SVM (as translated) and
   * not yet acknowledged by it, with their end in the client's sequence space; made on first need.
   */
  sentToSecondary: SentLog | null = null;
  sentBytes = 0;
  /** The SVM's ACK and the caller time at the last re-delivery (see `redeliver`). */
  redeliveredAck = -1;
  redeliveredAt = 0;
  /** The end of the segment last delivered again while recovering, -1 when not recovering. */
  redeliveredEnd = -1;
  /** Caller time the SVM's ACK last moved, or client data was delivered to it with none outstanding. */
  secondaryAckMovedAt = 0;
  /** The SVM's last advertised window (raw), -1 before one, and its duplicate ACKs in a row (see `secondaryAcked`). */
  svmWindow = -1;
  dupAcks = 0;
  /** `compareHeaders` values of the connection's first primary segment (connection-constant fields only). */
  headers: string | null = null;
  /** VLAN tags of the connection's first output frame, as hex ('' untagged). */
  tags: string | null = null;
  /** IP options or chosen IPv6 extension headers of the connection's first output frame (`ipOptionsOf`, '' none). */
  ipOptions: string | null = null;
  /**
   * Secondary segments not yet matched, oldest first: their relative end and arrival time. The
   * head's time is how long the SVM has been ahead (for the timeout); made on first need, dropped by an idle scan.
   */
  secondaryPending: WaitingSegments | null = null;
  /**
   * `framesImmutable`: as `primaryWaitsLong`, for secondary output waiting, whose later segments
   * are then copied (without it the matcher copies them into its own arena anyway): found by
   * `secondaryWaits`, cleared once none waits.
   */
  copySecondary = false;
  /** FINs seen from the guest and from the client: both mean the connection is closing. */
  outputFin = false;
  /** The end of the PVM's FIN (its sequence number + 1), -1 before one. */
  outputFinEnd = -1;
  /** Translate mode: the client's highest ACK so far, -1 before one. */
  clientAck = -1;
  /** An RST seen from either guest. */
  rstSeen = false;
  clientFin = false;
  /** Translate mode: the client reset the connection, so no output of it can reach the client any more (see `scan`). */
  clientReset = false;
  /** Translate mode: the newest TSval the client has sent (a re-delivery carries it: see `redeliver`), -1 before one. */
  clientTsval = -1;
  /** Translate mode: the end of the client's sequence space seen so far (SYN, data and FIN), -1 before any. */
  clientEnd = -1;
  /** FIN both ways, or an RST (see `finish`). */
  finished = false;
  /**
   * Translate mode: the client's SYN opened this entry, so each guest's first segment on it is its
   * SYN-ACK (or an RST refusing the SYN): anything else a guest sends before is the previous
   * connection's on these ports (see `stale`).
   */
  passiveOpen = false;
  /** Sequence number of the SYN (or SYN-ACK) the client, the PVM and the SVM sent on it, -1 before one: see `newIncarnation`. */
  clientIsn = -1;
  primaryIsn = -1;
  secondaryIsn = -1;
  /**
   * The secondary's segments that came while a handshake was seen but not yet compared, or null.
   * Where they belong in the stream is not known before: the base is the PVM's ISN, and in
   * translate mode the SVM's offset comes from the two handshakes. They count as waiting output.
   */
  early: EarlySegments | null = null;

  constructor(key: string, now: number, idleLimit: number, config: ComparatorConfig) {
    super(key, 'tcp', now, idleLimit);
    this.match = new TcpStreamMatch({ bytesEqual: config.bytesEqual, maxBytesPerSide: config.maxQueueBytes, copySecondary: !config.framesImmutable });
    this.translation = config.mode === 'translate' ? new SequenceTranslation() : null;
  }

  resetAfterCheckpoint(): void {
    this.match.resetAfterCheckpoint();
    this.translation?.reset();
    this.diverged = false;
    this.paired = null;
    // Without a handshake segment of the PVM's, only the SVM was ahead of the checkpoint: now a
    // copy of a PVM that had not opened (or answered) yet, both guests send theirs afresh, each
    // with an ISN of its own, to be learned as in any handshake.
    this.handshakeDone = this.handshakeDone || this.primaryIsn !== -1;
    this.primarySyn = null;
    this.secondarySyn = null;
    this.secondaryAck = this.primaryAck;
    // The SVM is a copy of the PVM: a handshake segment it resends carries the PVM's ISN.
    this.secondaryIsn = this.primaryIsn;
    this.toSecondary = null;
    this.sentToSecondary = null;
    this.sentBytes = 0;
    this.redeliveredAck = -1;
    this.redeliveredEnd = -1;
    this.dupAcks = 0;
    this.dropSecondaryWaiting();
    // The SVM is now a copy of the PVM: learn the VLAN tags and IP options afresh, whoever speaks first.
    this.tags = null;
    this.ipOptions = null;
  }

  secondaryWaitingSince(): number {
    const pending = this.secondaryPending?.oldestSince() ?? -1;
    const early = this.early?.list[0]?.since ?? -1;
    return pending === -1 || (early !== -1 && early < pending) ? early : pending;
  }

  secondaryWaitingCount(): number {
    return (this.secondaryPending?.length ?? 0) + (this.early?.list.length ?? 0);
  }

  dropSecondaryWaiting(): void {
    this.secondaryPending = null;
    this.copySecondary = false;
    this.early = null;
  }

  /** Gives back what an idle connection does not need (for the periodic scan; nothing may be held). */
  trimMemory(): void {
    this.match.trimMemory();
    if (this.secondaryPending?.length === 0) this.secondaryPending = null;
  }
}

/**
 * A secondary message waiting for its primary counterpart: its parts (over a copy), when it came
 * (or was last timed afresh), and whether a resynchronisation has kept it once already.
 */
interface WaitingMessage {
  parts: MessageParts;
  since: number;
  kept?: boolean;
}

class MessageConnection extends Connection {
  /** Secondary messages waiting for their primary counterparts (copies); changed only through the methods below. */
  readonly waiting = new Fifo<WaitingMessage>();
  /** Frame bytes of `waiting`, held to `maxQueueBytes` as the primary's held bytes are. */
  waitingBytes = 0;
  /** The compared parts of each held primary message and how many held frames carry it, in step with `held`. */
  readonly heldParts = new Fifo<{ parts: MessageParts; frames: number }>();
  /** Messages compared so far, the position reported in a mismatch. */
  index = 0;
  /** Translate mode, UDP and echo flows: which guests have sent on this flow (HEARD_* bits), for the pairing of first datagrams. */
  heard = 0;
  /** Translate mode: caller time of the last guest output on the flow, either guest's. */
  lastOutput = -Infinity;
  /** Messages each guest sent on the flow since the last checkpoint or resynchronisation (see `resynchronize`). */
  primaryMessages = 0;
  secondaryMessages = 0;
  /**
   * The primary messages a resynchronisation released uncompared whose SVM copies are still to
   * come, in order: an SVM message equal to the head is that copy, and skipped; any other ends the
   * list (the copy was lost, or differs) and is compared as usual.
   */
  readonly owed = new Fifo<MessageParts>();

  resetAfterCheckpoint(): void {
    this.clearWaiting();
    this.heldParts.clear();
    this.diverged = false;
    this.paired = null;
    // The SVM is now the PVM: a flow either had open, both have (on the PVM's port), so the next
    // datagram on it is no first one. A flow of the SVM's apart is not the PVM's, and stays apart.
    if (this.heard !== 0 && !this.key.startsWith(SECONDARY_APART_PREFIX)) this.heard |= HEARD_PRIMARY | HEARD_SECONDARY;
    this.primaryMessages = 0;
    this.secondaryMessages = 0;
    this.owed.clear();
  }

  /**
   * After a request no checkpoint answered (the SVM was not reset), with every held primary
   * message released uncompared: messages are paired in order, so the SVM's copies of those still
   * to come are skipped, and the SVM's messages beyond the PVM's wait on, timed from `now`, for
   * the primary ones they are copies of. Returns how many waiting messages were dropped.
   */
  resynchronize(now: number): number {
    for (const parts of this.unanswered(false)) this.owed.push(parts);
    this.heldParts.clear();
    const ahead = this.secondaryMessages - this.primaryMessages;
    let dropped = 0;
    // Beyond the PVM's, and kept for one more timeout, once: still waiting at the next
    // resynchronisation, a message has no primary counterpart coming (output of the SVM's alone).
    // Those kept before are the oldest, at the front.
    while (this.waiting.length > 0 && (this.waiting.length > Math.max(0, ahead) || this.waiting.peek()!.kept === true)) {
      this.shiftWaiting();
      dropped++;
    }
    for (const w of this.waiting) {
      w.since = now;
      w.kept = true;
    }
    // Counted afresh from here: the SVM's messages kept are sent ones the PVM has yet to match.
    this.primaryMessages = 0;
    this.secondaryMessages = this.waiting.length;
    return dropped;
  }

  pushWaiting(w: WaitingMessage): void {
    this.waiting.push(w);
    this.waitingBytes += w.parts.bytes.length;
  }

  shiftWaiting(): WaitingMessage | undefined {
    const w = this.waiting.shift();
    if (w !== undefined) this.waitingBytes -= w.parts.bytes.length;
    return w;
  }

  clearWaiting(): void {
    this.waiting.clear();
    this.waitingBytes = 0;
  }

  /**
   * `compareMessages` on this flow. In a flow paired across different ports the guests' ports
   * correspond by the pairing and are not compared: a UDP head from the remote port on, an echo
   * message's body after its identifier.
   */
  compare(p: MessageParts, s: MessageParts, reason: MismatchReason, equal: BytesEqual): Mismatch | null {
    return this.compareAt(p, s, reason, this.index++, equal);
  }

  /** Takes the SVM's message `s` when it is its copy of the first owed one (see `owed`); true when it was. */
  takeOwed(s: MessageParts, equal: BytesEqual): boolean {
    const o = this.owed.shift()!;
    if (this.compareAt(o, s, 'udp.payload', this.index, equal) === null) return true;
    this.owed.clear();
    return false;
  }

  /**
   * The held messages whose SVM copies have not come (the last primary-minus-secondary of them), in
   * order, after the owed ones when `withOwed` (a departing flow's, for its successor).
   */
  unanswered(withOwed = true): MessageParts[] {
    const out = withOwed ? [...this.owed] : [];
    const missing = this.primaryMessages - this.secondaryMessages;
    let i = this.heldParts.length;
    for (const h of this.heldParts) if (i-- <= missing) out.push(h.parts);
    return out;
  }

  private compareAt(p: MessageParts, s: MessageParts, reason: MismatchReason, index: number, equal: BytesEqual): Mismatch | null {
    if (this.paired === null) return compareMessages(p, s, reason, index, equal);
    const [head, body] = this.cls === 'udp' ? [2, 0] : [0, 2];
    return compareMessages(p.skipping(head, body), s.skipping(head, body), reason, index, equal);
  }

  secondaryWaitingSince(): number {
    return this.waiting.peek()?.since ?? -1;
  }

  secondaryWaitingCount(): number {
    return this.waiting.length;
  }

  dropSecondaryWaiting(): void {
    this.clearWaiting();
  }
}

/** The comparator's public face; see the module header for the call order. */
export interface Comparator {
  /** Takes one frame from `side` at caller time `now` (ms), with an optional tag returned with its release; returns what to do. */
  ingest(side: Side, frame: Uint8Array, now: number, tag?: unknown): Action[];
  /** Lets time pass to `now`: timeouts, idle connections. */
  advance(now: number): Action[];
  /** The checkpoint controller finished a checkpoint: flush and restart comparison. */
  checkpointDone(now: number): Action[];
  /**
   * `ingest`, `advance`, `checkpointDone` and `resynchronize` with the actions handed to `sink` as calls instead
   * of returned (actions.ts `ActionSink`); the two forms may be mixed freely. No `Action` objects
   * or arrays are made: at 64-byte payloads that was ~300 of the ~830 bytes allocated per frame
   * pair, and the sink form ran 1.1-1.2x as many frames a second (bench/comparator.ts).
   */
  ingestTo(sink: ActionSink, side: Side, frame: Uint8Array, now: number, tag?: unknown): void;
  advanceTo(sink: ActionSink, now: number): void;
  checkpointDoneTo(sink: ActionSink, now: number): void;
  /**
   * What `checkpointDoneTo` does, when no checkpoint was done: for a front end that stops
   * comparing (it passes the PVM's output through), every held frame goes out and the rest with
   * it. Not counted as a checkpoint done.
   */
  flushTo(sink: ActionSink, now: number): void;
  /**
   * A checkpoint request that no checkpoint will answer (no controller can take one, as beside
   * KVM): the SVM was not reset, so only the connections that asked (diverged, timed out, over a
   * limit, evicted with frames held, or waiting behind one that was) release their held frames, in
   * arrival order, and are compared again from there: a TCP connection from the PVM's end, the
   * SVM's bytes beyond it kept and its copies below it ignored; a datagram flow skipping the SVM's
   * copies of the messages released uncompared. Every other connection, the SVM's output queued
   * for comparison, the sequence translations and port pairings stay as they are: discarding them
   * would turn the SVM's copies still on their way into false timeouts and shifted datagram pairs.
   * Ends the pending request.
   */
  resynchronize(now: number): Action[];
  resynchronizeTo(sink: ActionSink, now: number): void;
  /** When `advance` must next be called (caller time), or undefined when nothing waits. */
  nextDeadline(): number | undefined;
  /** True between a `checkpoint` action and `checkpointDone` (or `resynchronize`). */
  readonly checkpointPending: boolean;
  readonly counters: Counters;
}

/** Creates a comparator; throws ConfigError for a bad setting. */
export function createComparator(config: Partial<ComparatorConfig> = {}): Comparator {
  return new Engine(resolveConfig(config));
}

const NO_ACTIONS: Action[] = [];

/** `Engine.datagramOpen`: an SVM datagram offered as resumed waits for its twin (apart). */
const RESUMED_SECONDARY = 'resumed secondary';

/** The tag of a datagram offered to the pairing as resumed: the flow it came on, and where the SVM's wait meanwhile (null for the PVM's). */
class ResumedOffer {
  constructor(readonly home: string, readonly apart: string | null) {}
}
const PRIMARY_RESUMED = new ResumedOffer('', null);

/** Whether a datagram on `c`, a flow both guests have sent on, may be a new flow's first (see `Engine.datagramOpen`). */
function resumable(c: MessageConnection, now: number): boolean {
  return (c.heard & HEARD_CLIENT_FIRST) === 0 && now - c.lastOutput >= RESUME_QUIET_MS && c.held.length === 0 && c.waiting.length === 0 &&
    c.owed.length === 0 && !c.diverged && !c.blocked;
}

/** `MessageConnection.heard` bits. */
const HEARD_PRIMARY = 1;
const HEARD_SECONDARY = 2;
/** The client spoke first on the flow (a guest-side server): both guests answer from the port it chose. */
const HEARD_CLIENT_FIRST = 4;

/** The sink outside calls: any action emitted then is a bug. */
const NO_SINK: ActionSink = {
  release: refuse, deliver: refuse, drop: refuse, mismatch: refuse, checkpoint: refuse, event: refuse,
};

function refuse(): never {
  throw new Error('comparator: action emitted outside a call');
}

class Engine implements Comparator {
  readonly counters = new Counters();
  checkpointPending = false;
  private readonly table: ConnectionTable<Connection>;
  private readonly heldQueue = new HeldQueue(this.counters);
  /** Where the current call's actions go; NO_SINK between calls. */
  private sink: ActionSink = NO_SINK;
  /** The sink of the array-returning calls, reused (each call gets a fresh array). */
  private readonly list = new ActionList();
  private lastScan = -1;
  /** Connections whose SVM ACK is to be looked at again shortly (see `redeliver`, `settle`). */
  private readonly settling = new Map<TcpConnection, Settling>();
  private readonly copier = new SlabCopier();
  /**
   * The copier of what flows waiting over LONG_WAIT_MS keep (`keeper`). Copied where every other
   * copy goes (client frames for the SVM, fragments, other flows' held frames), a waiting flow's
   * frames would lie one to a slab, each slab then kept alive whole until the wait ends: 43.6 MiB
   * for 154 KB held under a busy upload in translate mode, in a review's run.
   */
  private readonly waitCopier = new SlabCopier();
  private readonly keys = new FlowKeys();
  /**
   * `framesImmutable`: guest output frames are kept as views, never copied. At 1448-byte payloads
   * the copies were ~27 % of the core's CPU profile (one 1.5 KB copy per frame pair, into a slab
   * for a held primary or the matcher's arena for a secondary ahead), at 64 bytes ~8 %.
   */
  private readonly keep: boolean;
  /**
   * Decodes each ingested frame into reused views (no allocation). Nothing keeps the Frame or its
   * views past `ingest`; paths that decode a second frame inside one call use `decodeFrame`.
   */
  private readonly decoder = new FrameDecoder();
  /** The tag of the frame being ingested. */
  private tag: unknown = undefined;
  /** Primary frames ingested so far: the arrival number of the latest (HeldFrame.arrival). */
  private primaryArrivals = 0;
  /** Tags and arrival numbers of the primary fragments waiting in the reassembler (keyed by the copy handed to it). */
  private readonly fragmentTags = new Map<Uint8Array, { tag: unknown; arrival: number }>();
  /** The configured header fields that are checked for TCP (the connection-constant ones). */
  private readonly tcpHeaders: readonly HeaderField[];
  private readonly primaryFragments: FragmentReassembler;
  private readonly secondaryFragments: FragmentReassembler;
  /** Translate mode: pairs the two guests' SYNs of guest-initiated connections (ports may differ). */
  private readonly pairing: ActiveOpenPairing;
  /**
   * The connections looked up since the last checkpoint, the only ones a checkpoint resets: nothing
   * but a lookup changes a connection, and a reset leaves one as a second reset would, so any other
   * connection is as the previous checkpoint left it. A checkpoint then costs what changed since the
   * last one, not the size of the table (a walk of every connection was 83 % of the CPU replaying
   * 20,000 one-datagram flows that each diverged).
   */
  private readonly touched = new Set<Connection>();
  /**
   * Keys of connections that left the table with frames held or secondary output waiting, until the
   * checkpoint (see `blocked`), each with the departed datagram flow's held messages whose SVM
   * copies have not come (see `MessageConnection.owed`), which the next connection under the key
   * takes on: released uncompared by a resynchronisation, their copies are still to come.
   */
  private readonly blockedKeys = new Map<string, MessageParts[]>();
  /** How long a closed connection stays: closedLingerMs, but never less than compareTimeoutMs (config.ts). */
  private readonly lingerMs: number;
  /** Idle limit of an established translate-mode connection whose SVM numbers differ (`keepWhileTranslated`). */
  private readonly translatedIdleMs: number;
  /** How long a closed translate-mode connection whose SVM numbers differ stays (`finish`). */
  private readonly translatedLingerMs: number;

  constructor(private readonly config: ComparatorConfig) {
    this.keep = config.framesImmutable;
    this.lingerMs = Math.max(config.closedLingerMs, config.compareTimeoutMs);
    this.translatedIdleMs = Math.max(config.idleTimeoutMs, TRANSLATED_IDLE_MS);
    this.translatedLingerMs = Math.max(this.lingerMs, TRANSLATED_CLOSED_LINGER_MS);
    this.table = new ConnectionTable<Connection>(config.maxConnections, (c, _key, reason) => this.removed(c, reason));
    this.tcpHeaders = config.compareHeaders.filter((f) => CONNECTION_CONSTANT_FIELDS.includes(f));
    this.primaryFragments = new FragmentReassembler({ timeoutMs: config.compareTimeoutMs });
    this.secondaryFragments = new FragmentReassembler({ timeoutMs: config.compareTimeoutMs });
    this.pairing = new ActiveOpenPairing({ pendingTimeout: config.compareTimeoutMs, maxMappings: config.maxConnections });
  }

  ingest(side: Side, bytes: Uint8Array, now: number, tag?: unknown): Action[] {
    const list = this.list;
    list.actions = [];
    this.ingestTo(list, side, bytes, now, tag);
    return list.actions;
  }

  advance(now: number): Action[] {
    if (!this.scanDue(now) && now < this.nextSettle()) return NO_ACTIONS;
    const list = this.list;
    list.actions = [];
    this.advanceTo(list, now);
    return list.actions;
  }

  checkpointDone(now: number): Action[] {
    const list = this.list;
    list.actions = [];
    this.checkpointDoneTo(list, now);
    return list.actions;
  }

  resynchronize(now: number): Action[] {
    const list = this.list;
    list.actions = [];
    this.resynchronizeTo(list, now);
    return list.actions;
  }

  ingestTo(sink: ActionSink, side: Side, bytes: Uint8Array, now: number, tag?: unknown): void {
    this.enter(sink);
    try {
      this.tag = tag;
      // After a stretch with nothing to scan (no deadline given), scans resume from now: a caller
      // stepping through deadlines (replay) would otherwise step through the whole gap.
      if (this.lastScan < 0 || (now - this.lastScan > this.config.scanIntervalMs && this.idle())) this.lastScan = now;
      const decoded = this.decoder.decode(bytes, LINKTYPE_ETHERNET);
      if (side === 'client') {
        this.counters.clientFrames++;
        this.client(bytes, decoded, now);
      } else if (side === 'primary') {
        this.counters.primaryFrames++;
        this.primaryArrivals++;
        this.output(true, bytes, decoded, now);
      } else {
        this.counters.secondaryFrames++;
        this.output(false, bytes, decoded, now);
        sink.drop(bytes);
      }
    } finally {
      this.sink = NO_SINK;
    }
  }

  advanceTo(sink: ActionSink, now: number): void {
    const scanDue = this.scanDue(now);
    if (!scanDue && now < this.nextSettle()) return;
    this.enter(sink);
    try {
      if (this.settling.size > 0) this.settle(now);
      if (!scanDue) return;
      this.lastScan = now;
      for (const o of this.primaryFragments.expire(now)) this.fragmentOutcome(true, o, now);
      for (const o of this.secondaryFragments.expire(now)) this.fragmentOutcome(false, o, now);
      this.scan(now);
      this.table.sweep(now);
    } finally {
      this.sink = NO_SINK;
    }
  }

  private scanDue(now: number): boolean {
    return this.lastScan >= 0 && now >= this.lastScan + this.config.scanIntervalMs;
  }

  checkpointDoneTo(sink: ActionSink, now: number): void {
    this.counters.checkpointsDone++;
    this.flushTo(sink, now);
  }

  flushTo(sink: ActionSink, now: number): void {
    this.enter(sink);
    try {
      this.checkpointPending = false;
      const cut = this.flushHeld(now);
      this.counters.secondaryWaitingFrames = 0;
      this.secondaryFragments.clear(now);
      this.secondaryFragments.adoptCut(this.primaryFragments);
      this.pairing.clear();
      this.blockedKeys.clear();
      for (const c of this.touched) {
        c.touched = false;
        c.blocked = false;
        // The SVM's sequence space is the PVM's again: nothing is lost by forgetting this one when idle.
        if (c.idleKind === IDLE_TRANSLATED) c.idleLimit = this.config.idleTimeoutMs;
        else if (c.idleKind === IDLE_CLOSED_TRANSLATED) c.idleLimit = this.lingerMs;
        c.idleKind = IDLE_USUAL;
        c.held.clear();
        c.heldBytes = 0;
        if (c instanceof TcpConnection && c.toSecondary !== null && c.toSecondary.length > 0) {
          this.event('client.discarded', c.flow, `${c.toSecondary.length} client frames for the secondary`);
        }
        c.resetAfterCheckpoint();
        c.lastSeen = Math.max(c.lastSeen, now);
      }
      this.touched.clear();
      for (const c of cut) c.match.restartMidStream();
    } finally {
      this.sink = NO_SINK;
    }
  }

  resynchronizeTo(sink: ActionSink, now: number): void {
    this.enter(sink);
    try {
      this.checkpointPending = false;
      const asked = new Set<Connection>();
      for (const c of this.touched) if (c.diverged || c.blocked) asked.add(c);
      // One walk of the held frames, in arrival order: those of the connections that asked, and of
      // connections that left the table, whose held frames wait in the global queue (see `removed`).
      for (let h = this.heldQueue.oldest(); h !== undefined; ) {
        const next = h.newer ?? undefined;
        const owner = h.owner as Connection;
        if (owner.diverged || owner.evicted || asked.has(owner)) {
          asked.add(owner);
          this.heldQueue.release(h);
          this.emitRelease(h);
        }
        h = next;
      }
      for (const c of asked) {
        c.held.clear();
        c.heldBytes = 0;
        c.diverged = false;
        c.blocked = false;
        if (c instanceof TcpConnection) this.resynchronizeTcp(c, now);
        else if (c instanceof MessageConnection) this.counters.secondaryWaitingFrames -= c.resynchronize(now);
      }
      // Every connection they blocked was among them.
      this.blockedKeys.clear();
    } finally {
      this.sink = NO_SINK;
    }
  }

  /**
   * A TCP connection's comparison goes on from the primary's end, the SVM's bytes beyond it kept
   * and its state untouched (see `resynchronize` and `TcpStreamMatch.resynchronize`); the SVM's
   * segments still waiting to be compared are timed afresh. A handshake whose two sides were
   * compared as different is taken as done, so that the SVM's sequence space is learned from it
   * (translate mode) and the client's frames reach the SVM.
   */
  private resynchronizeTcp(c: TcpConnection, now: number): void {
    const pending = c.secondaryPending;
    // The SVM's bytes are kept for one more timeout, once: still waiting at the next
    // resynchronisation, they have no primary counterpart coming (output of the SVM's alone).
    const kept = c.match.resynchronize(pending === null || !pending.kept);
    // The SVM's segments that came before the handshakes could be compared wait on for them, once,
    // while a handshake is missing (a PVM late with its SYN-ACK, the SVM's banner already out).
    const early = c.early;
    const keepEarly = early !== null && !early.kept && !c.handshakeDone && (c.primarySyn === null || c.secondarySyn === null);
    const dropped = (keepEarly ? 0 : early?.list.length ?? 0) + (pending === null ? 0 : kept ? pending.dropVerified(c.match.verified) : pending.length);
    this.counters.secondaryWaitingFrames -= dropped;
    if (keepEarly) {
      for (const e of early.list) e.since = now;
      early.kept = true;
    } else c.early = null;
    // What still waits gets a timeout of its own from now: the request about it has just ended.
    if (!kept) {
      c.secondaryPending = null;
      c.copySecondary = false;
    } else pending?.waitFrom(now);
    // Client frames piled up for an SVM whose handshake has not come: past the limit they go (they
    // are what the request was about), below it they wait on for its handshake.
    const waiting = c.toSecondary;
    if (!c.handshakeDone && waiting !== null && waiting.length > this.config.maxQueueFrames) {
      this.event('client.discarded', c.flow, `${waiting.length} client frames for the secondary, whose handshake never came`);
      c.toSecondary = null;
    }
    const p = c.primarySyn;
    const s = c.secondarySyn;
    if (c.handshakeDone || p === null || s === null) return;
    c.handshakeDone = true;
    c.primarySyn = null;
    c.secondarySyn = null;
    if (c.translation !== null) {
      learnFromHandshake(c.translation, p.isn, s.isn, p.tsVal, s.tsVal);
      this.flushToSecondary(c, now);
    }
  }

  /**
   * Releases every held primary frame and the fragments of datagrams the reassembler has not
   * completed (a checkpoint), all in arrival order: the held queue is in that order, and each
   * fragment goes out before the first held frame that came after it. Returns the TCP connections
   * whose segment those fragments cut (see `cutSegmentConnections`).
   */
  private flushHeld(now: number): Set<TcpConnection> {
    const fragments = this.primaryFragments.clear(now).map((frame) => ({ frame, arrival: this.fragmentTags.get(frame)?.arrival ?? 0 }));
    fragments.sort((a, b) => a.arrival - b.arrival);
    const cut = this.cutSegmentConnections(fragments.map((f) => f.frame));
    let next = 0;
    for (const h of this.heldQueue.drain()) {
      for (; next < fragments.length && fragments[next]!.arrival <= h.arrival; next++) this.releaseNow(fragments[next]!.frame, this.fragmentTag(fragments[next]!.frame));
      this.emitRelease(h);
    }
    for (; next < fragments.length; next++) this.releaseNow(fragments[next]!.frame, this.fragmentTag(fragments[next]!.frame));
    return cut;
  }

  /**
   * The connections of the TCP segments among a flush's unassembled primary fragments, found by
   * the first fragment (the one with the TCP header). The PVM sent the whole segment before the
   * checkpoint: its later fragments are released as they come (`fragmentOutcome`), and the SVM,
   * now a copy of the PVM, goes on after it. Neither side's stream will ever have those bytes
   * for the matcher, so the comparison of such a connection starts afresh after the checkpoint,
   * as for a connection picked up mid-stream. (A cut segment whose first fragment comes only
   * after the checkpoint is not found this way: its connection waits for the compare timeout.)
   */
  private cutSegmentConnections(fragments: readonly Uint8Array[]): Set<TcpConnection> {
    const cut = new Set<TcpConnection>();
    for (const frame of fragments) {
      const f = decodeFrame(frame, LINKTYPE_ETHERNET);
      if (!(f instanceof Frame) || f.transport?.kind !== 'tcp') continue;
      const c = this.table.get(this.keys.of(f, true, -1));
      if (c instanceof TcpConnection) cut.add(c);
    }
    return cut;
  }

  /** Starts a call: its actions go to `sink`. A sink calling back into the comparator is refused. */
  private enter(sink: ActionSink): void {
    if (this.sink !== NO_SINK) throw new Error('comparator: called from inside an ActionSink call');
    this.sink = sink;
  }

  nextDeadline(): number | undefined {
    if (this.lastScan < 0 || this.idle()) return undefined;
    const scan = this.lastScan + this.config.scanIntervalMs;
    return this.settling.size === 0 ? scan : Math.min(scan, this.nextSettle());
  }

  /** Nothing a scan could act on: no connection, held frame, pending fragment or datagram cut by a checkpoint. */
  private idle(): boolean {
    const p = this.primaryFragments;
    const s = this.secondaryFragments;
    return this.table.size === 0 && this.counters.heldFrames === 0 && p.pendingDatagrams + p.cutDatagrams + s.pendingDatagrams + s.cutDatagrams === 0;
  }

  // --- client side -------------------------------------------------------------------------

  private client(bytes: Uint8Array, decoded: Frame | WireError, now: number): void {
    this.sink.deliver('primary', bytes);
    if (decoded instanceof Frame && this.config.mode === 'translate' && isPairableDatagram(decoded)) this.clientDatagram(decoded, now);
    if (!(decoded instanceof Frame) || this.config.mode !== 'translate' || decoded.transport?.kind !== 'tcp') {
      this.sink.deliver('secondary', decoded instanceof Frame && this.config.mode === 'translate' ? this.forSecondary(bytes, decoded) : bytes);
      return;
    }
    const c = this.connection(decoded, false, now, -1, decoded.transport.isSyn ? SOURCE_CLIENT : NO_SOURCE);
    if (!(c instanceof TcpConnection)) {
      this.sink.deliver('secondary', bytes);
      return;
    }
    const tcp = decoded.transport;
    const reset = tcp.isRst && resets(c, tcp);
    if (tcp.isRst && !reset) this.event('client.rst_ignored', c.flow, `client RST at seq ${tcp.seq}, not where the guests expect the client's next byte: they discard it or answer with an ACK (RFC 5961), the connection stays open`);
    // A client SYN on a live connection (the client lost its state: a reboot, a NAT rebinding) is
    // answered with an ACK and changes nothing (RFC 5961 §4): its number is not the connection's.
    // Taken as the client's ISN, the SYN it sends again once it has reset the connection looked
    // like a resend on the old entry, and the new connection was opened by a SYN-ACK, as if the
    // guest had opened it (see `resets`).
    const straySyn = tcp.isSyn && !tcp.isAck && c.handshakeDone && !c.closing && tcp.seq !== c.clientIsn;
    if (!tcp.isRst && !straySyn) {
      const end = seqAdd(tcp.seq, decoded.payloadLength + (tcp.isSyn ? 1 : 0) + (tcp.isFin ? 1 : 0));
      c.clientEnd = c.clientEnd === -1 ? end : seqMax(c.clientEnd, end);
    }
    if (tcp.isFin || reset) c.closing = true;
    if (tcp.isFin) c.clientFin = true;
    if (reset) c.clientReset = true;
    if (reset || (c.clientFin && c.outputFin)) this.finish(c);
    if (tcp.isSyn && !straySyn) c.clientIsn = tcp.seq;
    // Not from a stray SYN: a client that lost its state may run another timestamp clock.
    const tsval = straySyn ? -1 : tcp.tsVal;
    if (tsval !== -1 && (c.clientTsval === -1 || seqGt(tsval, c.clientTsval))) c.clientTsval = tsval;
    if (tcp.isSyn && !tcp.isAck) {
      // A client SYN opens a passive connection: nothing in it refers to the guest's sequence space.
      this.sink.deliver('secondary', bytes);
      return;
    }
    if (tcp.isAck) {
      c.clientAck = c.clientAck === -1 ? tcp.ack : seqMax(c.clientAck, tcp.ack);
      if (c.idleKind === IDLE_CLOSED_TRANSLATED && outputFinAcked(c)) this.finish(c);
    }
    if (c.idleKind === IDLE_USUAL && !c.finished) this.keepWhileTranslated(c);
    const copy = this.copier.copy(bytes);
    if (!c.translation!.known || c.toSecondary !== null) {
      const waiting = (c.toSecondary ??= new Fifo<Uint8Array>());
      waiting.push(copy);
      if (waiting.length > this.config.maxQueueFrames && !c.diverged) this.mismatch(c, limitMismatch(`${waiting.length} client frames for the secondary wait for its handshake`));
      return;
    }
    this.deliverTranslated(c, copy, now);
  }

  /**
   * Translate mode: a client datagram (or echo message) on a flow no guest has spoken on yet opens
   * it from the client's side: the guests answer from the port (identifier) the client chose, so
   * their answers are never paired across ports (`datagramOpen`), whatever order they come in.
   */
  private clientDatagram(f: Frame, now: number): void {
    const c = this.connection(f, false, now);
    if (c instanceof MessageConnection && c.heard === 0) c.heard = HEARD_CLIENT_FIRST;
  }

  /** Translate mode: a client frame that is not TCP, as the SVM must get it. */
  private forSecondary(bytes: Uint8Array, f: Frame): Uint8Array {
    const quote = quotedTransport(f, 'destination') ?? quotedEchoRequest(f);
    return quote === null ? this.toSecondaryPort(bytes, f) : this.quoteToSecondary(bytes, f, quote);
  }

  /**
   * An ICMP or ICMPv6 error about a packet a guest sent (port unreachable, fragmentation needed,
   * time exceeded...), its quote mapped (a copy) into the SVM's space: the guest's port (a ping's
   * echo identifier) if the guests chose different ones, and a TCP sequence number by the
   * connection's offset. Linux ignores an error whose quoted sequence number is outside the
   * socket's window, a socket on another port never sees it, and a ping socket matches errors by
   * identifier. The ICMP checksum is updated; the quoted transport checksum is left as it was
   * (receivers do not check it, and a quote is usually too short to).
   */
  private quoteToSecondary(bytes: Uint8Array, f: Frame, q: QuotedTransport): Uint8Array {
    const tcp = q.protocol === 6;
    // UDP flows and pings are remapped by the pairing alone: with no mapping, nothing to look up.
    if (!tcp && this.pairing.mappingCount === 0) return bytes;
    const echo = q.protocol === 1 || q.protocol === 58;
    const b = f.bytes;
    // An echo's identifier stands for its port.
    const portAt = echo ? q.at + 4 : q.at;
    const guestPort = readU16(b, portAt);
    // The quoted flow as a client frame (remote to guest), for the lookups.
    const [guest, remote] = q.v6 ? [formatIpv6(b, q.ipAt + 8), formatIpv6(b, q.ipAt + 24)] : [formatIpv4(readU32(b, q.ipAt + 12)), formatIpv4(readU32(b, q.ipAt + 16))];
    const ends = { src: remote, dst: guest, srcPort: readU16(b, q.at + 2), dstPort: guestPort };
    const client = tcp ? emitTcp({ ...ends, seq: 0, ack: 0, flags: TCP_ACK }) : echo ? emitIcmpEcho({ src: remote, dst: guest, id: guestPort, sequence: 0, reply: true }) : emitUdp(ends);
    const flow = decodeFrame(client, LINKTYPE_ETHERNET) as Frame;
    let port = guestPort;
    let seqOffset = 0;
    if (!tcp) {
      port = this.pairing.secondaryPortOf(flow);
    } else {
      const c = this.table.get(this.keys.of(flow, false));
      const t = c instanceof TcpConnection ? c.translation : null;
      if (t === null || !t.known) return bytes;
      if (t.secondaryPort !== -1) port = t.secondaryPort;
      seqOffset = t.seqOffset;
    }
    if (port === -1 || (port === guestPort && seqOffset === 0)) return bytes;
    const copy = this.copier.copy(bytes);
    const checksumAt = (f.transport as IcmpView | Icmpv6View).offset + 2;
    if (port !== guestPort) rewriteU16(copy, portAt, checksumAt, port);
    if (seqOffset !== 0) rewriteU32(copy, q.at + 4, checksumAt, seqAdd(readU32(b, q.at + 4), seqOffset));
    return copy;
  }

  /**
   * A client datagram (or echo reply) to a flow the guests opened from different ports (echo
   * identifiers), readdressed (a copy) to the SVM's.
   */
  private toSecondaryPort(bytes: Uint8Array, f: Frame): Uint8Array {
    if (this.pairing.mappingCount === 0) return bytes;
    const t = f.transport;
    const port = this.pairing.secondaryPortOf(f);
    if (t === null || port === -1) return bytes;
    if (t instanceof UdpView) {
      if (port === t.dstPort) return bytes;
      const copy = this.copier.copy(bytes);
      // A first fragment's UDP length counts the whole datagram: parse it as the frame was.
      (UdpView.parse(copy, t.offset, t.length, f.isFragment) as UdpView).setDstPort(port);
      return copy;
    }
    if ((t instanceof IcmpView || t instanceof Icmpv6View) && port !== t.echoId) {
      const copy = this.copier.copy(bytes);
      // The copy has the frame's layout, so its view parses as the original's did.
      const view = (t instanceof IcmpView ? IcmpView.parse(copy, t.offset, t.length) : Icmpv6View.parse(copy, t.offset, t.length)) as IcmpView | Icmpv6View;
      view.setEchoId(port);
      return copy;
    }
    return bytes;
  }

  private deliverTranslated(c: TcpConnection, copy: Uint8Array, now: number): void {
    const f = decodeFrame(copy, LINKTYPE_ETHERNET);
    if (f instanceof Frame) {
      translateClientToSecondary(f, c.translation!);
      const t = f.transport;
      if (t !== null && t.kind === 'tcp' && (f.payloadLength > 0 || t.isFin)) this.rememberSent(c, t.seq, seqAdd(t.seq, f.payloadLength + (t.isFin ? 1 : 0)), copy, now);
    }
    this.sink.deliver('secondary', copy);
  }

  /**
   * Keeps a client segment the SVM has not acknowledged yet, within maxQueueBytes a connection.
   * Past that the newest is not kept, the oldest is: the first segment the SVM lacks is the one a
   * re-delivery needs (dropping the oldest lost exactly that one, for good).
   */
  private rememberSent(c: TcpConnection, start: number, end: number, frame: Uint8Array, now: number): void {
    // With nothing outstanding, the SVM's ACK is timed from here: it had nothing to move for before.
    if (c.sentToSecondary === null || c.sentToSecondary.length === 0) c.secondaryAckMovedAt = now;
    const sent = (c.sentToSecondary ??= new SentLog());
    sent.deliveries++;
    if (c.sentBytes + frame.length > this.config.maxQueueBytes) return;
    sent.push(new SentSegment(start, end, frame, sent.deliveries));
    c.sentBytes += frame.length;
  }

  /** An SVM segment's ACK while client data delivered to it is outstanding: what it says for re-delivery (see `redeliver`). */
  private secondaryAcked(c: TcpConnection, before: number, f: Frame, tcp: TcpView, now: number): void {
    const ack = c.secondaryAck;
    const window = tcp.window;
    let why = REDELIVER_NOTHING;
    if (before === -1 || seqGt(ack, before)) {
      c.secondaryAckMovedAt = now;
      c.dupAcks = 0;
      why = REDELIVER_ACK_MOVED;
    } else if (f.payloadLength === 0 && (tcp.flags & (TCP_SYN | TCP_FIN | TCP_RST)) === 0) {
      if (window !== c.svmWindow) why = REDELIVER_WINDOW_UPDATE;
      else if (++c.dupAcks >= REDELIVER_DUP_ACKS) why = REDELIVER_DUP_ACKS_SEEN;
    }
    c.svmWindow = window;
    const sack = tcp.sackBlockCount > 0 ? tcp.sackLeft(0) : -1;
    // D-SACK: its first block below the ACK, a segment it got twice (RFC 2883). A block above the
    // ACK: holes left past what it took (a partial ACK, RFC 6675).
    this.redeliver(c, now, why, sack !== -1 && seqGt(tcp.ack, sack), sack !== -1 && seqGt(sack, tcp.ack), before);
  }

  /**
   * Translate mode: the SVM can drop client data the PVM accepted (its receive window was full,
   * say), and the client, which only hears the PVM, never retransmits it: the PVM's output then
   * waits at the ACK gate until a timeout. So while the PVM has acknowledged client data the SVM
   * has not, the first segment the SVM lacks is delivered to it again when the SVM says it lacks
   * it, as a sender's fast retransmit would, at most every REDELIVER_GAP_MS for one ACK:
   * - on REDELIVER_DUP_ACKS duplicate ACKs (Linux sends one for each segment it drops out of its
   *   window or takes beyond a hole; one alone may answer a copy it already had), which starts a
   *   recovery: while its ACK then comes to rest exactly at the end of what went again (it took
   *   that and nothing after it, which it would have had by then: the link to it keeps order), the
   *   next segment it lacks goes at once;
   * - when its ACK moves with SACK blocks above it (holes left: what came after the hole did
   *   arrive), recovering or not, unless the segment at the hole went after the one that moved
   *   the ACK (the client's own resend of it, still on its way): after a zero window, the SVM
   *   taking one segment again then brings the next at once, where it waited for a scan (one a
   *   second: five such segments outlasted the compare timeout);
   * - on a window update (its application read, so what it dropped for a full window fits now);
   * - at a scan, when its ACK has not moved for REDELIVER_STALL_MS (a segment dropped at the end
   *   of an upload, which draws no duplicate ACK).
   * The last two deliver one segment and start no recovery at once: the SVM's own copies of the
   * later segments may still be on their way (a slow SVM's queue). When its ACK then comes to rest
   * exactly at the end of that segment and stays there REDELIVER_SETTLE_MS (`settle`), they are
   * not: the next goes and a recovery begins. Without it, a zero window that dropped every later
   * segment (no SACK block to show the holes) had them go one a scan. An ACK that moves
   * otherwise is an SVM a little slower than the PVM, its segments on their way: delivering them
   * again doubled the client's traffic to the SVM in every upload. A D-SACK (it got a segment
   * twice) or an ACK past what went again, without holes left, ends the recovery. What goes again is the segment holding the
   * SVM's next byte (the client's resends come after later segments in delivery order), carrying
   * the newest timestamp the client has sent on the connection: the SVM may have taken a later
   * segment meanwhile, and Linux discards one older than that (PAWS, RFC 7323 §5), answering it
   * with a D-SACK.
   */
  private redeliver(c: TcpConnection, now: number, why: number, dsack: boolean, holesLeft = false, before = -1): void {
    const sent = c.sentToSecondary!;
    const acked = c.secondaryAck;
    // Nothing of a connection the client reset goes to the SVM again: it would answer with an RST.
    if (acked === -1 || c.clientReset) return;
    // Before the segments it acknowledged are forgotten: when the latest of them went.
    const moved = why === REDELIVER_ACK_MOVED && holesLeft ? lastDeliveryBelow(sent, before, acked) : 0;
    for (let head = sent.peek(); head !== undefined && !seqGt(head.end, acked); head = sent.peek()) c.sentBytes -= sent.shift()!.frame.length;
    const next = segmentAt(sent, acked);
    if (next === undefined || c.primaryAck === -1 || !seqGt(c.primaryAck, acked) || c.diverged || dsack) {
      c.redeliveredEnd = -1;
      return;
    }
    const recovering = c.redeliveredEnd !== -1;
    if (why === REDELIVER_ACK_MOVED) {
      const atRest = recovering && acked === c.redeliveredEnd;
      if (!atRest && !(holesLeft && next.delivery < moved)) {
        c.redeliveredEnd = -1;
        if (acked === sent.probeEnd) this.settling.set(c, { at: now + REDELIVER_SETTLE_MS, ack: acked, log: sent });
        sent.probeEnd = -1;
        return;
      }
    } else {
      if (why === REDELIVER_NOTHING) return;
      if (why === REDELIVER_SCAN && now - c.secondaryAckMovedAt < REDELIVER_STALL_MS) return;
      if (why !== REDELIVER_SETTLED && acked === c.redeliveredAck && now - c.redeliveredAt < REDELIVER_GAP_MS) return;
    }
    c.redeliveredAck = acked;
    c.redeliveredAt = now;
    if (recovering || why === REDELIVER_DUP_ACKS_SEEN || why === REDELIVER_SETTLED) c.redeliveredEnd = next.end;
    else sent.probeEnd = next.end;
    next.delivery = ++sent.deliveries;
    this.counters.count('client.redelivered');
    this.sink.deliver('secondary', withNewestTimestamp(next.frame, c.clientTsval));
  }

  /** The connections whose settle time has come: where the SVM's ACK still rests, the next segment it lacks goes (see `redeliver`). */
  private settle(now: number): void {
    for (const [c, s] of this.settling) {
      if (s.at > now) continue;
      this.settling.delete(c);
      // Unless something went again at that ACK meanwhile (a window update, duplicate ACKs): it
      // was this very segment, and the probe it made waits for its own ACK.
      if (!c.evicted && c.sentToSecondary === s.log && c.secondaryAck === s.ack && c.redeliveredAck !== s.ack) this.redeliver(c, now, REDELIVER_SETTLED, false);
    }
  }

  /** The earliest settle time armed, or Infinity. */
  private nextSettle(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.settling.values()) next = Math.min(next, s.at);
    return next;
  }

  private flushToSecondary(c: TcpConnection, now: number): void {
    const waiting = c.toSecondary;
    if (waiting === null) return;
    c.toSecondary = null;
    for (let f = waiting.shift(); f !== undefined; f = waiting.shift()) this.deliverTranslated(c, f, now);
  }

  // --- guest output -------------------------------------------------------------------------

  private output(primary: boolean, bytes: Uint8Array, decoded: Frame | WireError, now: number): void {
    if (!(decoded instanceof Frame)) {
      this.counters.count(decoded.code);
      this.sink.event(decoded.code, 'undecodable frames', `${primary ? 'primary' : 'secondary'} frame of ${bytes.length} bytes, compared whole`);
      this.message(this.specialConnection(UNDECODABLE_KEY, now), primary, [bytes], false, wholeFrameParts(bytes), now);
      return;
    }
    if (decoded.isFragment) {
      const r = primary ? this.primaryFragments : this.secondaryFragments;
      const copy = this.copier.copy(bytes);
      if (primary) this.fragmentTags.set(copy, { tag: this.tag, arrival: this.primaryArrivals });
      for (const o of r.add(decodeFrame(copy, LINKTYPE_ETHERNET) as Frame, now)) this.fragmentOutcome(primary, o, now);
      return;
    }
    const tcp = decoded.transport?.kind === 'tcp' ? decoded.transport : null;
    if (tcp === null) {
      const parts = messageParts(decoded, this.config.compareHeaders);
      this.message(this.messageConnection(primary, decoded, now), primary, [bytes], false, this.config.mode === 'translate' ? withoutClientRewrites(decoded, parts) : parts, now);
      return;
    }
    const translate = this.config.mode === 'translate';
    const syn = tcp.isSyn;
    const activeOpen = translate && syn && !tcp.isAck;
    if (activeOpen) this.activeOpen(primary, decoded, now);
    const c = activeOpen && !primary
      ? this.secondarySynConnection(decoded, tcp, now)
      : this.connection(decoded, true, now, translate && !primary ? this.pairing.primaryPortOf(decoded) : -1, !syn ? NO_SOURCE : primary ? SOURCE_PRIMARY : SOURCE_SECONDARY);
    this.tcp(c as TcpConnection, primary, bytes, decoded, tcp, now);
  }

  /**
   * Translate mode, the SVM's SYN of a connection it opens. Paired, it belongs to the PVM's
   * connection; until then it waits in a connection of its own port, unless the PVM has a live
   * connection on that very port: the guests' ephemeral ports crossed (the SVM chose for this
   * connection the port the PVM uses for another), and the SYN waits under a key of its own
   * (SECONDARY_APART_PREFIX) instead of being taken for part of the PVM's other connection.
   */
  private secondarySynConnection(f: Frame, tcp: TcpView, now: number): Connection {
    const port = this.pairing.primaryPortOf(f);
    if (port === tcp.srcPort) {
      const live = this.table.get(this.keys.of(f, true, -1));
      // A connection whose SVM side is another port is never this SYN's, closing or not.
      const elsewhere = live instanceof TcpConnection && live.paired !== null && live.paired.secondaryPort !== tcp.srcPort;
      if (live instanceof TcpConnection && (elsewhere || (live.handshakeDone && !live.closing && live.secondaryIsn !== tcp.seq))) {
        const key = SECONDARY_APART_PREFIX + live.key;
        const c = this.table.get(key) ?? this.opened(key, f, now);
        c.lastSeen = now;
        this.touch(c);
        return c;
      }
    }
    return this.connection(f, true, now, port, SOURCE_SECONDARY);
  }

  /**
   * The flow of a guest's output message (not TCP). In translate mode UDP datagrams and echo
   * messages are keyed under the PVM's port (identifier) when the guests' differ, learned by
   * pairing their first ones (datagramOpen). An SVM datagram of a new flow from a port the PVM
   * uses for another flow to the same peer (the guests' ports crossed) waits for its pair under a
   * key of its own, as the SVM's SYN does (`secondarySynConnection`).
   */
  private messageConnection(primary: boolean, f: Frame, now: number): MessageConnection {
    if (this.config.mode !== 'translate' || !isPairableDatagram(f)) return this.connection(f, true, now) as MessageConnection;
    if (this.pairing.pendingCount > 0) this.pairing.expire(now);
    if (this.pairing.droppedResumed.length > 0) this.rehomeDropped();
    let guestPort = primary ? -1 : this.pairing.primaryPortOf(f);
    const crossed = !primary && this.crossedDatagram(f, guestPort);
    const open = this.datagramOpen(primary, f, guestPort, crossed, now);
    const pair = open instanceof PairedOpen ? open : null;
    if (pair !== null && !primary) guestPort = pair.primaryPort;
    // The SVM's datagrams wait apart while a pairing may still take them to another flow.
    const c = (crossed || open === RESUMED_SECONDARY) && pair === null ? this.apart(f, now) : (this.connection(f, true, now, guestPort) as MessageConnection);
    c.heard |= primary ? HEARD_PRIMARY : HEARD_SECONDARY;
    c.lastOutput = now;
    if (pair !== null) c.paired = pair.primaryPort === pair.secondaryPort ? null : pair;
    return c;
  }

  /**
   * Offers a guest's first datagram (or echo message) on a flow to the pairing (rewrite/pairing.ts);
   * returns the pairing when it completes with different ports (identifiers), or one that replaces
   * earlier mappings at all; RESUMED_SECONDARY when an SVM datagram offered as resumed waits (so
   * does any more from its port). When the PVM's completes the pairing, the SVM's datagrams so
   * far, waiting in a flow keyed by the SVM's own port, move to the PVM's flow.
   *
   * A datagram on a flow both guests have sent on is not a first one, unless the flow has been
   * quiet (`resumable`): it may then be the first of a new flow from a port the guest drew again,
   * and is offered as resumed. The other guest's next datagram on the flow is then offered as
   * resumed too: pairing by order tells whether the flow went on or both guests opened new ones
   * (see rewrite/pairing.ts), and a pairing replaces the old flow's. An SVM datagram offered as
   * resumed waits apart, tagged with the flow it would belong to if its offer is dropped unpaired
   * (`rehomeDropped`).
   */
  private datagramOpen(primary: boolean, f: Frame, guestPort: number, crossed: boolean, now: number): PairedOpen | typeof RESUMED_SECONDARY | null {
    const pairing = this.pairing;
    if (!primary && pairing.resumedWaiting > 0 && pairing.waitingResumed(false, f, guestPortOf(f, true), now)) return RESUMED_SECONDARY;
    const known = crossed ? undefined : this.table.get(this.keys.of(f, true, guestPort));
    let resumed: ResumedOffer | undefined;
    if (known instanceof MessageConnection && (known.heard & (HEARD_CLIENT_FIRST | (primary ? HEARD_PRIMARY : HEARD_SECONDARY))) !== 0) {
      const twinWaits = !primary && pairing.resumedWaiting > 0 && pairing.waitingResumed(true, f, guestPort, now);
      // The SVM first, its datagram would wait apart: not in a full table, where that flow would
      // evict another (the flow it came on, say). It is then taken for more of this flow.
      if (!twinWaits && (!resumable(known, now) || (!primary && this.table.size >= this.config.maxConnections))) return null;
      resumed = primary ? PRIMARY_RESUMED : new ResumedOffer(known.key, SECONDARY_APART_PREFIX + this.keys.of(f, true, -1));
    }
    const pair = primary ? pairing.offerPrimaryDatagram(f, now, resumed) : pairing.offerSecondaryDatagram(f, now, resumed);
    if (pair === null) return resumed === undefined || primary ? null : RESUMED_SECONDARY;
    if (!pair.replaced && pair.primaryPort === pair.secondaryPort) return null;
    if (primary) this.adoptSecondaryDatagrams(f, pair, now);
    return pair;
  }

  /**
   * SVM datagrams offered as resumed whose offers the pairing dropped unpaired (expired, or evicted
   * by a flood of offers): no new flow took them, so they are more of the flow their port was paired
   * for, and wait there for the PVM's, unless the PVM's output is held there (left to time out).
   */
  private rehomeDropped(): void {
    for (const tag of this.pairing.droppedResumed.splice(0)) {
      if (!(tag instanceof ResumedOffer) || tag.apart === null) continue;
      const stray = this.table.get(tag.apart);
      const home = this.table.get(tag.home);
      if (!(stray instanceof MessageConnection) || !(home instanceof MessageConnection) || stray === home || home.held.length > 0 || stray.held.length > 0) continue;
      for (let w = stray.shiftWaiting(); w !== undefined; w = stray.shiftWaiting()) {
        home.pushWaiting(w);
        home.secondaryMessages++;
      }
      this.touch(home); // a checkpoint must reset what waits in it now
      this.mergedAway(stray);
    }
  }

  /**
   * Whether an SVM datagram from a port with no mapping belongs to a new flow although the PVM has
   * a flow on that port to the same peer: that flow is paired with another SVM port.
   */
  private crossedDatagram(f: Frame, guestPort: number): boolean {
    if (guestPort !== guestPortOf(f, true)) return false;
    const live = this.table.get(this.keys.of(f, true, guestPort));
    return live instanceof MessageConnection && live.paired !== null && live.paired.secondaryPort !== guestPort;
  }

  /** The SVM's crossed datagram's own flow until its pair comes (see `messageConnection`). */
  private apart(f: Frame, now: number): MessageConnection {
    const key = SECONDARY_APART_PREFIX + this.keys.of(f, true, -1);
    const c = this.table.get(key) ?? this.opened(key, f, now);
    c.lastSeen = now;
    this.touch(c);
    return c as MessageConnection;
  }

  private adoptSecondaryDatagrams(f: Frame, pair: PairedOpen, now: number): void {
    // The target first: opening it in a full table may evict the stray, which then has nothing to give.
    const target = this.connection(f, true, now) as MessageConnection;
    const strayKey = flowKey(f, true, pair.secondaryPort);
    // Under a key of their own when the ports crossed or the datagram was offered as resumed,
    // else under the SVM's port; never a flow the PVM sends on.
    for (const key of [SECONDARY_APART_PREFIX + strayKey, strayKey]) {
      const stray = this.table.get(key);
      if (!(stray instanceof MessageConnection) || stray === target || stray.held.length > 0 || (stray.heard & HEARD_PRIMARY) !== 0) continue;
      for (let w = stray.shiftWaiting(); w !== undefined; w = stray.shiftWaiting()) {
        target.pushWaiting(w);
        target.secondaryMessages++;
      }
      target.heard |= HEARD_SECONDARY;
      this.mergedAway(stray);
    }
  }

  /**
   * Offers a guest's SYN to the active-open pairing. When the pair completes with different
   * ports, the SVM's SYN (if it came first) sits in a connection keyed by the SVM's own port:
   * its handshake moves to the PVM's connection, which learns the port mapping.
   */
  private activeOpen(primary: boolean, syn: Frame, now: number): void {
    if (this.pairing.mappingCount > 0) this.endPairedIncarnation(primary, syn);
    if (this.resentPairedSyn(primary, syn)) return;
    const pair = primary ? this.pairing.offerPrimarySyn(syn, now) : this.pairing.offerSecondarySyn(syn, now);
    if (pair === null || pair.primaryPort === pair.secondaryPort) return;
    const target = this.connection(syn, true, now, pair.primaryPort, primary ? SOURCE_PRIMARY : SOURCE_SECONDARY);
    if (!(target instanceof TcpConnection)) return;
    learnFromPairedOpen(target.translation!, pair);
    target.paired = pair;
    if (primary) this.adoptSecondarySyn(target, flowKey(syn, true, pair.secondaryPort), pair);
  }

  /**
   * A guest's SYN resent for a connection both guests' SYNs are already in (the pairing keeps no
   * mapping when their ports are the same): not a new open, so not offered for pairing, where it
   * would wait and pair with the other guest's next connection to the same server.
   */
  private resentPairedSyn(primary: boolean, syn: Frame): boolean {
    const c = this.table.get(this.keys.of(syn, true, primary ? -1 : this.pairing.primaryPortOf(syn)));
    if (!(c instanceof TcpConnection) || c.closing || c.primaryIsn === -1 || c.secondaryIsn === -1) return false;
    return (primary ? c.primaryIsn : c.secondaryIsn) === (syn.transport as TcpView).seq;
  }

  /**
   * A guest's SYN for a new connection from the port of a closed, remapped one: the old connection
   * and its port mapping go first, or the pairing would take the SYN for part of the old one and
   * never pair it.
   */
  private endPairedIncarnation(primary: boolean, syn: Frame): void {
    const tcp = syn.transport as TcpView;
    const old = this.table.get(this.keys.of(syn, true, primary ? -1 : this.pairing.primaryPortOf(syn)));
    if (!(old instanceof TcpConnection) || !old.closing || old.paired === null) return;
    if ((primary ? old.paired.primaryPort : old.paired.secondaryPort) !== tcp.srcPort) return;
    if (!newIncarnation(old, primary ? SOURCE_PRIMARY : SOURCE_SECONDARY, tcp.seq)) return;
    this.table.delete(old.key);
    this.removed(old, 'reused');
  }

  private adoptSecondarySyn(target: TcpConnection, strayKey: string, pair: PairedOpen): void {
    for (const key of [SECONDARY_APART_PREFIX + strayKey, strayKey]) {
      const stray = this.table.get(key);
      if (!(stray instanceof TcpConnection) || stray.secondarySyn === null || stray.secondarySyn.isn !== pair.secondaryIsn) continue;
      target.secondarySyn ??= stray.secondarySyn;
      if (stray.early !== null) for (const e of stray.early.list) (target.early ??= new EarlySegments()).push(e);
      this.mergedAway(stray);
      return;
    }
  }

  /** Removes a connection whose contents moved to another (its SVM's port was paired): it counts as closed. */
  private mergedAway(c: Connection): void {
    this.table.delete(c.key);
    this.touched.delete(c);
    this.counters.connectionsClosed++;
  }

  /** Marks `c` for reset at the next checkpoint (see `touched`). */
  private touch(c: Connection): void {
    if (c.touched) return;
    c.touched = true;
    this.touched.add(c);
  }

  private connection(frame: Frame, guestIsSource: boolean, now: number, guestPort = -1, source = NO_SOURCE): Connection {
    // IPv4 flows are found by their tuple, without a key string; the key is built for the rest
    // and for a connection that is not in the table yet.
    const keys = this.keys;
    let c = keys.tuple(frame, guestIsSource, guestPort) ? this.table.getIpv4(keys.tupleProtocol, keys.tupleGuest, keys.tupleRemote, keys.tuplePorts) : undefined;
    if (c === undefined) {
      const key = keys.of(frame, guestIsSource, guestPort);
      c = this.table.get(key) ?? this.opened(key, frame, now, source);
    }
    if (source !== NO_SOURCE && newIncarnation(c, source, (frame.transport as TcpView).seq)) c = this.reopened(c, frame, now, source);
    c.lastSeen = now;
    this.touch(c);
    return c;
  }

  /**
   * A SYN on the ports of a connection that has closed (FIN or RST seen) starts a new one: a
   * client reusing its port, or a guest reopening to the same server, while the old one lingers.
   * Taken as more of the old stream it was placed against the old sequence numbers: a false
   * mismatch, or, below the old verified point, its bytes and options never compared.
   */
  private reopened(old: Connection, frame: Frame, now: number, source: number): Connection {
    this.table.delete(old.key);
    // What a reset connection still holds or waits for is timing, not state: it goes now as it
    // would at the next scan, with no checkpoint, nor a new connection blocked behind it.
    if (isClientReset(old) && !old.diverged) this.abandon(old);
    this.removed(old, 'reused');
    return this.opened(old.key, frame, now, source);
  }

  /** A new connection under `key` for `frame`'s flow, added to the table. */
  private opened(key: string, frame: Frame, now: number, source = NO_SOURCE): Connection {
    let c: Connection;
    const cls = flowClassOf(frame);
    if (cls === 'tcp') {
      const t = new TcpConnection(key, now, this.config.idleTimeoutMs, this.config);
      const tcp = frame.transport as TcpView;
      if (!tcp.isSyn) this.pickedUpMidStream(t);
      else if (source === SOURCE_CLIENT && !tcp.isAck) t.passiveOpen = true;
      c = t;
    } else {
      c = new MessageConnection(key, cls, now, this.config.idleTimeoutMs);
    }
    this.blockIfHeldAway(c);
    this.table.add(key, c);
    this.counters.connectionsOpened++;
    return c;
  }

  /** A new connection under the key of one that left with frames held or output waiting waits behind them (see `blocked`). */
  private blockIfHeldAway(c: Connection): void {
    const owed = this.blockedKeys.size === 0 ? undefined : this.blockedKeys.get(c.key);
    if (owed === undefined) return;
    c.blocked = true;
    c.diverged = true;
    if (c instanceof MessageConnection) for (const parts of owed) c.owed.push(parts);
  }

  /**
   * A connection whose first frame is not a SYN was open before we started (or before a restart).
   * Its handshakes are not coming; in translate mode assume the SVM's sequence space equals the
   * PVM's, which is true after any checkpoint and otherwise costs exactly one checkpoint.
   */
  private pickedUpMidStream(c: TcpConnection): void {
    c.handshakeDone = true;
    c.translation?.reset();
    this.event('flow.midstream', c.flow, 'no handshake seen: comparison starts mid-stream');
  }

  /** The shared connection of frames compared outside their own flow (undecodable, unreassembled fragments). */
  private specialConnection(key: string, now: number): MessageConnection {
    let c = this.table.get(key);
    if (c === undefined) {
      c = new MessageConnection(key, 'frame', now, this.config.idleTimeoutMs);
      this.blockIfHeldAway(c);
      this.table.add(key, c);
      this.counters.connectionsOpened++;
    }
    c.lastSeen = now;
    this.touch(c);
    return c as MessageConnection;
  }

  /**
   * A fragmented datagram reassembled on one side is compared as one message, and the primary
   * releases all its original fragments. A reassembled TCP segment (rare: Linux sets DF and sizes
   * to the MSS) goes into its connection like any segment, held and released as a `FragmentGroup`
   * of the PVM's fragments. Datagrams that cannot be reassembled (overlaps, limits, timeouts), or
   * do not decode once they are, are compared fragment by fragment from the IP payload on, in one
   * shared flow; a TCP segment's whose connection its first fragment names, in that connection
   * (`unassembledSegment`). The later fragments
   * of a datagram a checkpoint cut are the primary's output from before it, which the flush has
   * begun to release and the secondary will not send again: released at once (dropped on the
   * secondary). A TCP segment cut so restarts its connection's comparison (see
   * `cutSegmentConnections`).
   */
  private fragmentOutcome(primary: boolean, o: FragmentOutcome, now: number): void {
    if (o instanceof AfterCheckpoint) {
      this.event('fragment.after_checkpoint', 'ip fragments', `${primary ? 'primary fragment released' : 'secondary fragment dropped'}: its datagram was cut by a checkpoint`);
      if (primary) for (const f of o.fragments) this.releaseNow(f, this.fragmentTag(f));
      return;
    }
    if (o instanceof Reassembled) {
      const whole = decodeFrame(o.bytes, LINKTYPE_ETHERNET);
      if (whole instanceof Frame && whole.transport?.kind === 'tcp') {
        const tag = this.tag;
        this.tag = primary ? new FragmentGroup(o.fragments, o.fragments.map((f) => this.fragmentTag(f))) : undefined;
        try {
          this.output(primary, o.bytes, whole, now);
        } finally {
          this.tag = tag;
        }
        return;
      }
      if (whole instanceof Frame) {
        this.message(this.messageConnection(primary, whole, now), primary, o.fragments, true, messageParts(whole, this.config.compareHeaders), now);
        return;
      }
      this.counters.count(whole.code);
      this.sink.event(whole.code, 'ip fragments', `${primary ? 'primary' : 'secondary'} datagram of ${o.bytes.length} bytes reassembled from ${o.fragments.length} fragments does not decode`);
    } else {
      this.event(o.code as EventCode, 'ip fragments', `${o.fragments.length} ${primary ? 'primary' : 'secondary'} fragments not reassembled`);
    }
    const segmentOf = this.segmentConnection(primary, o.fragments);
    if (segmentOf !== null) {
      this.unassembledSegment(segmentOf, primary, o.fragments, now);
      return;
    }
    const c = this.specialConnection(FRAGMENTS_KEY, now);
    for (const f of o.fragments) this.message(c, primary, [f], true, messageParts(decodeFrame(f, LINKTYPE_ETHERNET) as Frame, this.config.compareHeaders), now);
  }

  /**
   * The TCP connection of a segment whose fragments did not make a datagram that decodes, found by
   * the first fragment's TCP header; null when that is missing (or too short to hold the ports),
   * or the connection is not in the table: its fragments are then compared one by one.
   */
  private segmentConnection(primary: boolean, fragments: readonly Uint8Array[]): TcpConnection | null {
    for (const frame of fragments) {
      const f = decodeFrame(frame, LINKTYPE_ETHERNET);
      if (!(f instanceof Frame) || f.transport?.kind !== 'tcp') continue;
      const c = this.table.get(this.keys.of(f, true, this.config.mode === 'translate' && !primary ? this.pairing.primaryPortOf(f) : -1));
      return c instanceof TcpConnection ? c : null;
    }
    return null;
  }

  /**
   * A TCP segment of `c` whose fragments could not be reassembled (an overlap with different
   * bytes, a limit, a timeout) or do not decode once they were: its bytes can never take their
   * place in the stream, whose comparison cannot go past them, so it asks for a checkpoint now
   * instead of at the timeout. The PVM's fragments are held in the connection, behind what it
   * already holds, released by the checkpoint: compared one by one outside it, they overtook its
   * held frames and the ACK gate.
   */
  private unassembledSegment(c: TcpConnection, primary: boolean, fragments: readonly Uint8Array[], now: number): void {
    if (primary) for (const f of fragments) this.hold(c, f, now, NEVER_COVERED, -1, false, this.fragmentTag(f));
    if (!c.diverged) this.mismatch(c, { reason: 'tcp.unassembled', position: -1, offset: 0, primaryHex: '', secondaryHex: '', detail: `${fragments.length} ${primary ? 'primary' : 'secondary'} fragments of a segment not reassembled` });
  }

  private tcp(c: TcpConnection, primary: boolean, bytes: Uint8Array, f: Frame, tcp: TcpView, now: number): void {
    // The header fields are read once into locals: the view's getters were ~9 % of the core's
    // CPU profile at 64 B, several of them not inlined into this (large) function.
    const flags = tcp.flags;
    const isFin = (flags & TCP_FIN) !== 0;
    const isSyn = (flags & TCP_SYN) !== 0;
    const isRst = (flags & TCP_RST) !== 0;
    const ack = (flags & TCP_ACK) !== 0 ? tcp.ack : -1;
    const tcpSeq = tcp.seq;
    if (c.passiveOpen && !isSyn && (primary ? c.primaryIsn : c.secondaryIsn) === -1 && !(isRst && ack === seqAdd(c.clientIsn, 1))) {
      this.stale(c, primary, bytes, f, tcpSeq, now);
      return;
    }
    if (isFin || isRst) c.closing = true;
    if (c.blocked) {
      if (primary) this.hold(c, this.kept(c, now, bytes), now, 0, -1, false, this.tag);
      // Nothing is compared while blocked, but the handshakes are noted: a resynchronisation (no
      // checkpoint to make the SVM a copy of the PVM) learns the SVM's sequence space from them.
      if (isSyn && !c.handshakeDone) {
        if (primary) c.primaryIsn = tcpSeq;
        else c.secondaryIsn = tcpSeq;
        if (primary) c.primarySyn ??= SynInfo.of(tcp, null);
        else c.secondarySyn ??= SynInfo.of(tcp, null);
      }
      return;
    }
    const tags = tagsOf(f);
    if (c.tags === null) c.tags = tags;
    else if (tags !== c.tags && !c.diverged) {
      this.mismatch(c, { reason: 'vlan', position: tcpSeq, offset: 0, primaryHex: primary ? tags : c.tags, secondaryHex: primary ? c.tags : tags, detail: 'VLAN tags differ within the connection' });
    }
    // The same for the IP options a guest chose (see `ipOptions`); skipped for IPv4 without
    // options once learned, nearly every segment (~2 % of the core at 64 B).
    if ((c.ipOptions !== '' || tcp.offset !== f.networkOffset + 20) && !isSyn && !isRst && (f.payloadLength > 0 || isFin)) this.ipOptions(c, primary, f, tcpSeq);

    if (this.tcpHeaders.length > 0 && !c.diverged) {
      const sig = headerSignature(f, this.tcpHeaders);
      if (c.headers === null) {
        if (primary) c.headers = sig;
      } else if (sig !== c.headers) {
        this.mismatch(c, { reason: 'header', position: tcpSeq, offset: 0, primaryHex: '', secondaryHex: '', detail: `${primary ? 'primary' : 'secondary'} segment has ${sig}, the connection ${c.headers}` });
      }
    }

    if (ack !== -1) {
      if (primary) c.primaryAck = c.primaryAck === -1 ? ack : seqMax(c.primaryAck, ack);
      else {
        const before = c.secondaryAck;
        c.secondaryAck = before === -1 ? ack : seqMax(before, ack);
        // Out of line: this function's size decides what V8 inlines into it (~3 % at 1448 B).
        if (c.sentToSecondary !== null) this.secondaryAcked(c, before, f, tcp, now);
      }
    }

    if (isRst) {
      c.rstSeen = true;
      this.finish(c);
    }
    if (isSyn) {
      this.syn(c, primary, bytes, f, tcp, now, ack);
      return;
    }

    if (!c.handshakeDone && !primary && !c.diverged && (c.primarySyn !== null || c.secondarySyn !== null)) {
      const urgent = (flags & TCP_URG) !== 0 ? tcp.urgentPointer : -1;
      const early = (c.early ??= new EarlySegments());
      early.push(new EarlySegment(this.kept(c, now, bytes), tcpSeq, isFin, isRst, f.payloadOffset, f.payloadLength, urgent, now));
      this.counters.secondaryWaitingFrames++;
      if (early.list.length > this.config.maxQueueFrames || early.bytes > this.config.maxQueueBytes) {
        this.mismatch(c, limitMismatch(`${early.list.length} secondary segments (${early.bytes} bytes) before the handshakes were compared`));
      }
      return;
    }
    const seq = primary || c.translation === null ? tcpSeq : seqAdd(tcpSeq, -c.translation.seqOffset);
    const compared = c.match.comparedBytes;
    const unverified = c.match.unverifiedBytes;
    if ((flags & TCP_URG) !== 0) c.match.urgentMark(primary, seq, f.payloadLength, tcp.urgentPointer);

    if (primary) {
      if (isFin) {
        c.outputFin = true;
        c.outputFinEnd = seqAdd(seq, f.payloadLength + 1);
      }
      if (c.clientFin && c.outputFin) this.finish(c);
      // Copy at the queue boundary: the matcher keeps a view of the primary bytes it cannot compare
      // yet, and a frame that is not released now is held. Released at once, it is never copied.
      // `keeper` for the per-segment path, from what `hold` found: primary frames waiting long.
      const views = this.keep && !c.primaryWaitsLong;
      const copier = c.primaryWaitsLong ? this.waitCopier : this.copier;
      let frame = views || c.match.secondaryCovers(seq, f.payloadLength, isFin) ? bytes : copier.copy(bytes);
      const end = c.match.addPrimary(seq, frame, isFin, isRst, f.payloadOffset, f.payloadLength);
      this.checkMatch(c);
      if (c.held.length === 0 && covered(c, end) && ackReached(c, ack)) {
        this.releaseNow(frame, this.tag);
      } else {
        if (frame === bytes && !views) frame = copier.copy(bytes);
        this.hold(c, frame, now, end, ack, false, this.tag);
      }
    } else {
      // With framesImmutable, copied while this flow's secondary output has waited long (found by
      // `secondaryWaits`); without, the matcher copies what it keeps of a segment itself.
      const kept = c.copySecondary && f.payloadLength > 0 ? this.waitCopier.copy(bytes) : bytes;
      const end = c.match.addSecondary(seq, kept, isFin, isRst, f.payloadOffset, f.payloadLength);
      this.checkMatch(c);
      // A segment with nothing to compare (a pure ACK) below what already waits adds no wait of
      // its own: counted, an SVM a byte ahead reached the frame limit on the ACKs of an upload.
      if (end > c.match.verified && (f.payloadLength > 0 || isFin || isRst || end > (c.secondaryPending?.newestEnd() ?? Number.NEGATIVE_INFINITY))) this.secondaryWaits(c, end, now);
    }
    this.matched(c, compared, unverified);
    this.releaseTcp(c);
  }

  /**
   * A guest segment on a connection the client's SYN opened, before that guest's SYN-ACK: the
   * previous connection's on these ports, which the client reset or closed (a segment in flight, a
   * FIN resent, an ACK from TIME-WAIT). It cannot belong to the new stream, whose start is the
   * guest's SYN-ACK, and taken into it, it set the stream's start at the old sequence numbers: the
   * new connection was then compared from the wrong place, its PVM output released unverified. The
   * PVM's goes to the client, as on a wire (after the frames it is held behind, when the entry
   * waits for the old connection's); the SVM's is dropped. Neither is compared: no output of a
   * connection the client has given up on reaches its application.
   */
  private stale(c: TcpConnection, primary: boolean, bytes: Uint8Array, f: Frame, seq: number, now: number): void {
    this.event('tcp.stale_segment', c.flow, `${primary ? 'primary' : 'secondary'} segment at seq ${seq} (${f.payloadLength} bytes) before its SYN-ACK on a connection the client just opened: the previous connection's on these ports, ${primary ? 'released' : 'dropped'} uncompared`);
    if (!primary) return;
    if (c.blocked) this.hold(c, this.kept(c, now, bytes), now, 0, -1, false, this.tag);
    else this.releaseNow(bytes, this.tag);
  }

  /** Secondary output up to `end` is not matched yet: the timeout runs from now for it. */
  private secondaryWaits(c: TcpConnection, end: number, now: number): void {
    const pending = (c.secondaryPending ??= new WaitingSegments());
    pending.push(end, now);
    this.counters.secondaryWaitingFrames++;
    c.copySecondary = this.keep && now - pending.oldestSince() > LONG_WAIT_MS;
    // The frame limit, as for the PVM's held frames and for datagrams: without it an SVM ahead in
    // small segments was bounded by bytes only (16 MiB of one-byte segments, each with its entry).
    if (pending.length > this.config.maxQueueFrames && !c.diverged) this.mismatch(c, limitMismatch(`${pending.length} secondary segments wait for the primary's`));
  }

  /** After bytes went into `c.match`: counters from the totals before, and the byte limit. */
  private matched(c: TcpConnection, compared: number, unverified: number): void {
    // Whatever the primary matched no longer waits: the timeout runs from the oldest unmatched segment.
    const pending = c.secondaryPending;
    if (pending !== null) {
      this.counters.secondaryWaitingFrames -= pending.dropVerified(c.match.verified);
      if (pending.length === 0) c.copySecondary = false;
    }
    this.counters.comparedBytes += c.match.comparedBytes - compared;
    this.counters.unverifiedBytes += c.match.unverifiedBytes - unverified;
    if (c.match.overLimit && !c.diverged) this.mismatch(c, limitMismatch(`TCP bytes held over ${this.config.maxQueueBytes}`));
  }

  /**
   * The IP options a guest chose (a source route...) on a segment carrying data or a FIN: one value
   * per connection, as a socket sets them, learned from the first such segment (an application
   * may set them only once connected, after the kernel's handshake ACK, and a TIME-WAIT ACK or an
   * RST comes from the kernel's own socket, without them); not header noise (match/ip-options.ts).
   */
  private ipOptions(c: TcpConnection, primary: boolean, f: Frame, position: number): void {
    const options = ipOptionsOf(f);
    const known = c.ipOptions;
    if (known === null) c.ipOptions = options;
    else if (options !== known && !c.diverged) {
      this.mismatch(c, {
        reason: 'header', position, offset: 0, primaryHex: primary ? options : known, secondaryHex: primary ? known : options,
        detail: `IP options differ within the connection: ${primary ? 'primary' : 'secondary'} segment has ${options === '' ? 'none' : options}, the connection ${known === '' ? 'none' : known}`,
      });
    }
  }

  /**
   * A SYN or SYN-ACK: held until both guests' handshakes are in and agree. Kept out of `tcp`, which
   * runs for every segment, to keep that function small: 64-byte lockstep pairs ran 2-7 % faster
   * (p75 of four alternating A/B runs; about the size of this machine's noise).
   */
  private syn(c: TcpConnection, primary: boolean, bytes: Uint8Array, f: Frame, tcp: TcpView, now: number, ack: number): void {
    // Also after a checkpoint that came before the primary's SYN (the matcher starts over then):
    // nothing else would start the comparison, and the SYN would wait for a timeout.
    if (primary && !c.match.started) c.match.startAt(tcp.seq);
    if (primary) c.primaryIsn = tcp.seq;
    else c.secondaryIsn = tcp.seq;
    const data = f.payloadLength > 0;
    if (primary) {
      const frame = this.kept(c, now, bytes);
      // Fast Open data (RFC 7413) is the stream's first bytes, just after the ISN, on either side.
      const end = data ? this.synData(c, true, seqAdd(tcp.seq, 1), frame, f.payloadOffset, f.payloadLength, now) : NO_SYN_DATA;
      if (!c.handshakeDone) c.primarySyn ??= SynInfo.of(tcp, data ? frame.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength) : null);
      this.hold(c, frame, now, end, ack, !c.handshakeDone, this.tag);
    } else if (!c.handshakeDone) {
      c.secondarySyn ??= SynInfo.of(tcp, data ? bytes.slice(f.payloadOffset, f.payloadOffset + f.payloadLength) : null);
    } else if (data && c.primaryIsn !== -1) {
      this.synData(c, false, seqAdd(c.primaryIsn, 1), bytes, f.payloadOffset, f.payloadLength, now);
    }
    if (!c.handshakeDone && c.primarySyn !== null && c.secondarySyn !== null) this.handshake(c, now);
    this.releaseTcp(c);
  }

  /**
   * One side's SYN payload into the stream at `seq` (the first data byte, in the primary's
   * space); returns its end offset. The secondary's then waits like any unmatched output.
   */
  private synData(c: TcpConnection, primary: boolean, seq: number, bytes: Uint8Array, at: number, length: number, now: number): number {
    const compared = c.match.comparedBytes;
    const unverified = c.match.unverifiedBytes;
    const end = primary ? c.match.addPrimary(seq, bytes, false, false, at, length) : c.match.addSecondary(seq, bytes, false, false, at, length);
    this.checkMatch(c);
    if (!primary && end > c.match.verified) this.secondaryWaits(c, end, now);
    this.matched(c, compared, unverified);
    return end;
  }

  private handshake(c: TcpConnection, now: number): void {
    const p = c.primarySyn!;
    const s = c.secondarySyn!;
    if (p.synAck !== s.synAck) {
      this.mismatch(c, { reason: 'tcp.handshake', position: p.isn, offset: 0, primaryHex: '', secondaryHex: '', detail: `${p.describe()} against ${s.describe()}` });
      return;
    }
    if (!p.agrees(s)) {
      this.mismatch(c, { reason: 'tcp.syn_options', position: p.isn, offset: 0, primaryHex: '', secondaryHex: '', detail: `${p.describe()} against ${s.describe()}` });
      return;
    }
    if ((p.data === null) !== (s.data === null)) {
      // The other guest's bytes could come only after the client answered this handshake, which
      // it cannot before the first guest's is released: waiting for them would end in a timeout.
      const one = p.data ?? s.data!;
      this.mismatch(c, {
        reason: 'tcp.payload', position: seqAdd(p.isn, 1), offset: 0, primaryHex: p.data === null ? '' : hexWindow(p.data, 0), secondaryHex: s.data === null ? '' : hexWindow(s.data, 0),
        detail: `data on the ${p.data !== null ? 'primary' : 'secondary'}'s ${p.synAck ? 'SYN-ACK' : 'SYN'} only (${one.length} bytes)`,
      });
      return;
    }
    c.handshakeDone = true;
    c.primarySyn = null;
    c.secondarySyn = null;
    if (s.data !== null) this.synData(c, false, seqAdd(p.isn, 1), s.data, 0, s.data.length, now);
    if (c.translation !== null) {
      learnFromHandshake(c.translation, p.isn, s.isn, p.tsVal, s.tsVal);
      this.flushToSecondary(c, now);
    }
    if (c.early !== null) this.addEarly(c);
    // A signed connection's segments cannot be rewritten without its key: the client's, translated
    // for the SVM (here, or by QEMU's filter-rewriter in pre-translated mode), would fail the SVM's
    // check and be dropped, and the PVM's output wait for a timeout. A checkpoint at once makes the
    // SVM's numbers the PVM's, and nothing needs rewriting from then on.
    if (p.signature !== '' && (p.isn !== s.isn || (c.translation !== null && (p.tsVal !== s.tsVal || c.paired !== null)))) {
      this.mismatch(c, {
        reason: 'tcp.signed', position: p.isn, offset: 0, primaryHex: '', secondaryHex: '',
        detail: `${p.signature} connection whose SVM numbers differ (ISN ${p.isn} against ${s.isn}): its segments cannot be translated without the key`,
      });
    }
  }

  /** The secondary's segments that came before the handshakes were compared, into the stream now. */
  private addEarly(c: TcpConnection): void {
    const early = c.early!.list;
    c.early = null;
    this.counters.secondaryWaitingFrames -= early.length;
    for (const e of early) {
      const compared = c.match.comparedBytes;
      const unverified = c.match.unverifiedBytes;
      const seq = c.translation === null ? e.seq : seqAdd(e.seq, -c.translation.seqOffset);
      if (e.urgentPointer !== -1) c.match.urgentMark(false, seq, e.payloadLength, e.urgentPointer);
      const end = c.match.addSecondary(seq, e.frame, e.fin, e.rst, e.payloadOffset, e.payloadLength);
      this.checkMatch(c);
      if (end > c.match.verified) this.secondaryWaits(c, end, e.since);
      this.matched(c, compared, unverified);
    }
  }

  /**
   * FIN both ways, or an RST: the connection lingers `lingerMs`, then goes. In translate mode, one
   * whose SVM numbers differ and whose guests' FIN the client has not acknowledged (as far as seen
   * here) lingers TRANSLATED_CLOSED_LINGER_MS, for their FIN resent from LAST-ACK with backoff
   * (the client's last ACK was lost): forgotten, the resend would be picked up mid-stream as the
   * identity and the SVM's copy never match. Called again when the client's ACK of that FIN comes:
   * the usual linger from then on (keeping every closed connection 3 min filled the table 18x as
   * fast, and a full one evicts an open one).
   */
  private finish(c: TcpConnection): void {
    c.finished = true;
    const resendsToCome = svmNumbersDiffer(c) && !c.clientReset && !c.rstSeen && !outputFinAcked(c);
    c.idleLimit = resendsToCome ? this.translatedLingerMs : this.lingerMs;
    c.idleKind = resendsToCome ? IDLE_CLOSED_TRANSLATED : IDLE_USUAL;
  }

  /**
   * An established connection (the client has sent past its SYN) whose SVM side differs from the
   * PVM's (sequence or timestamp offsets, or port) is forgotten only after TRANSLATED_IDLE_MS idle
   * (or a full table): resumed after the usual idle timeout it would be picked up mid-stream as
   * the identity, its client frames misaddressed to the SVM and its output mismatched. A half-closed
   * one too; once finished it lingers as `finish` says.
   */
  private keepWhileTranslated(c: TcpConnection): void {
    if (!svmNumbersDiffer(c)) return;
    c.idleLimit = this.translatedIdleMs;
    c.idleKind = IDLE_TRANSLATED;
  }

  private checkMatch(c: TcpConnection): void {
    const m = c.match.mismatch;
    if (m !== null && !c.diverged) this.mismatch(c, m);
  }

  /** Releases the connection's held TCP frames from the front while their conditions hold. */
  private releaseTcp(c: TcpConnection): void {
    // Even after a mismatch the bytes below `verified` did match: those frames need not wait.
    for (let h = c.held.peek(); h !== undefined; h = c.held.peek()) {
      if ((h.syn && !c.handshakeDone) || !covered(c, h.end)) return;
      if (!ackReached(c, h.ack)) return;
      this.releaseFront(c);
    }
  }

  /**
   * One message of a message-like flow. `frames` are what the primary releases for it: the frame
   * itself, or every fragment of a reassembled datagram; `owned` says they are copies already.
   */
  private message(c: MessageConnection, primary: boolean, frames: readonly Uint8Array[], owned: boolean, parts: MessageParts, now: number): void {
    // The SVM's copy of a primary message a resynchronisation released is skipped (see `owed`).
    if (!primary && c.owed.length > 0 && c.takeOwed(parts, this.config.bytesEqual)) return;
    if (primary) c.primaryMessages++;
    else c.secondaryMessages++;
    if (c.blocked) {
      if (primary) this.holdMessage(c, frames, owned, parts, now);
      return;
    }
    const reason = messageReason(c.cls);
    if (primary) {
      const waiting = c.waiting.peek();
      if (waiting !== undefined && !c.diverged && c.held.length === 0) {
        c.shiftWaiting();
        this.counters.secondaryWaitingFrames--;
        const m = c.compare(parts, waiting.parts, reason, this.config.bytesEqual);
        if (m === null) {
          this.counters.comparedBytes += parts.bodyLength;
          for (const frame of frames) this.releaseNow(frame, owned ? this.fragmentTag(frame) : this.tag);
          return;
        }
        this.mismatch(c, m);
      }
      this.holdMessage(c, frames, owned, parts, now);
      return;
    }
    if (c.diverged) return;
    const head = c.held.peek();
    if (head === undefined) {
      const copier = this.keeper(c, now);
      c.pushWaiting({ parts: copier === null ? parts : ownParts(parts, copier), since: now });
      this.counters.secondaryWaitingFrames++;
      if (c.waiting.length > this.config.maxQueueFrames || c.waitingBytes > this.config.maxQueueBytes) {
        this.mismatch(c, limitMismatch(`${c.waiting.length} secondary messages (${c.waitingBytes} bytes) waiting`));
      }
      return;
    }
    const first = c.heldParts.peek()!;
    const m = c.compare(first.parts, parts, reason, this.config.bytesEqual);
    if (m !== null) {
      this.mismatch(c, m);
      return;
    }
    this.counters.comparedBytes += parts.bodyLength;
    c.heldParts.shift();
    for (let i = 0; i < first.frames; i++) this.releaseFront(c);
  }

  // --- holding and releasing -----------------------------------------------------------------

  /** Holds a primary message's frames (copied unless `owned` or kept as they are) and its parts, in step. */
  private holdMessage(c: MessageConnection, frames: readonly Uint8Array[], owned: boolean, parts: MessageParts, now: number): void {
    let kept = parts;
    for (const frame of frames) {
      const copy = owned ? frame : this.kept(c, now, frame);
      if (frame === parts.bytes) kept = parts.rebased(copy);
      this.hold(c, copy, now, -1, -1, false, owned ? this.fragmentTag(frame) : this.tag);
    }
    c.heldParts.push({ parts: kept, frames: frames.length });
  }

  /**
   * Where what `c` keeps of the frame being ingested goes: `null`, a view of the caller's buffer
   * (`framesImmutable`), else a copier. Once its output has waited longer than LONG_WAIT_MS (one
   * guest behind on it, or a difference waiting for the timeout), its frames may wait up to the
   * timeout, and they go to `waitCopier`: a view would keep the caller's whole buffer alive (in
   * `compare`, a socket read of up to 64 KiB for each frame: 115 MiB for 138 KB held in one run,
   * a waiting flow among busy ones), a copy among everyone else's its whole slab (`run`: 12 MiB
   * for 200 frames of 154 bytes in a test). What came before it began waiting stays where it was:
   * at most what the caller reads in LONG_WAIT_MS. TCP's per-segment path checks only the side it
   * keeps for, and off that path: `hold` and `secondaryWaits` set `primaryWaitsLong` and
   * `copySecondary`, read by the segments after (a check in `tcp` itself cost 3-5 % at 64 B), so
   * the segment that finds a wait may still be kept where the ones before it were.
   */
  private keeper(c: Connection, now: number): SlabCopier | null {
    const since = c.secondaryWaitingSince();
    if (!primaryRecent(c, now) || (since !== -1 && now - since > LONG_WAIT_MS)) return this.waitCopier;
    return this.keep ? null : this.copier;
  }

  /** `bytes` as `c` keeps it past this call (see `keeper`). */
  private kept(c: Connection, now: number, bytes: Uint8Array): Uint8Array {
    const copier = this.keeper(c, now);
    return copier === null ? bytes : copier.copy(bytes);
  }

  private hold(c: Connection, frame: Uint8Array, now: number, end: number, ack: number, syn: boolean, tag: unknown): void {
    c.held.push(this.heldQueue.add(frame, c, now, end, ack, syn, tag, this.primaryArrivals));
    c.heldBytes += frame.length;
    c.primaryWaitsLong = !primaryRecent(c, now);
    if (!c.diverged && (c.held.length > this.config.maxQueueFrames || c.heldBytes > this.config.maxQueueBytes)) {
      this.mismatch(c, limitMismatch(`${c.held.length} primary frames (${c.heldBytes} bytes) held`));
    }
    if (this.counters.heldBytes > this.config.maxHeldBytes && !this.checkpointPending) this.heldOverLimit();
  }

  /**
   * Past `maxHeldBytes` held in all: a checkpoint, asked for on the connections holding the oldest
   * frames (as a timeout would be), as many as hold half the limit's worth, so that a request
   * ended without a checkpoint (`resynchronize`) lets that much go rather than one connection's
   * and then asks again at the next frame. A connection the client reset lets its frames go
   * without one, as at a scan (`abandon`).
   */
  private heldOverLimit(): void {
    const excess = this.counters.heldBytes - this.config.maxHeldBytes / 2;
    const owners = new Set<Connection>();
    let taken = 0;
    for (let h = this.heldQueue.oldest(); h !== undefined && taken < excess; h = h.newer ?? undefined) {
      const c = h.owner as Connection;
      if (owners.has(c)) continue;
      owners.add(c);
      taken += c.heldBytes;
    }
    const detail = `${this.counters.heldFrames} primary frames (${this.counters.heldBytes} bytes) held across all connections`;
    let first: Connection | undefined;
    for (const c of owners) {
      if (isClientReset(c) && !c.diverged) this.abandon(c);
      else if (!c.diverged) this.mismatch(c, limitMismatch(detail));
      first ??= c;
    }
    if (!this.checkpointPending && this.counters.heldBytes > this.config.maxHeldBytes && first !== undefined) this.requestCheckpoint('queue_full', first.flow);
  }

  private releaseFront(c: Connection): void {
    const h = c.held.shift()!;
    c.heldBytes -= h.frame.length;
    this.heldQueue.release(h);
    this.emitRelease(h);
    this.heldQueue.recycle(h);
  }

  private emitRelease(h: HeldFrame): void {
    this.releaseNow(h.frame, h.tag);
  }

  private releaseNow(frame: Uint8Array, tag: unknown): void {
    if (tag instanceof FragmentGroup) {
      this.releaseFragments(tag);
      return;
    }
    this.counters.releasedFrames++;
    this.sink.release(frame, tag);
  }

  /** Kept out of `releaseNow`, which must stay small and not recursive to be inlined (~6 % at 64 B). */
  private releaseFragments(group: FragmentGroup): void {
    for (let i = 0; i < group.frames.length; i++) {
      this.counters.releasedFrames++;
      this.sink.release(group.frames[i]!, group.tags[i]);
    }
  }

  /** The tag of a primary fragment coming back from the reassembler (forgotten once taken). */
  private fragmentTag(frame: Uint8Array): unknown {
    const f = this.fragmentTags.get(frame);
    if (f === undefined) return undefined;
    this.fragmentTags.delete(frame);
    return f.tag;
  }

  // --- verdicts ------------------------------------------------------------------------------

  private mismatch(c: Connection, m: Mismatch): void {
    c.diverged = true;
    this.counters.mismatch(m.reason);
    this.sink.mismatch(c.flow, m);
    this.requestCheckpoint(m.reason, c.flow);
  }

  private event(code: EventCode, flow: string, detail: string): void {
    this.counters.count(code);
    this.sink.event(code, flow, detail);
  }

  private requestCheckpoint(reason: MismatchReason, flow: string): void {
    if (this.checkpointPending) {
      this.counters.checkpointsCoalesced++;
      return;
    }
    this.checkpointPending = true;
    this.counters.checkpointRequested(reason);
    this.sink.checkpoint(reason, flow);
  }

  /** The periodic scan: timeouts on both sides, and idle matchers give their spare buffers back. */
  private scan(now: number): void {
    const limit = this.config.compareTimeoutMs;
    let oldest = this.heldQueue.oldest();
    for (; oldest !== undefined && now - oldest.since > limit && isClientReset(oldest.owner) && !oldest.owner.diverged; oldest = this.heldQueue.oldest()) {
      this.abandon(oldest.owner);
    }
    if (oldest !== undefined && now - oldest.since > limit && !oldest.owner.diverged) {
      this.mismatch(oldest.owner as Connection, timeoutMismatch(`primary frame held ${toMicroseconds(now - oldest.since)} ms`));
    }
    for (const c of this.table.values()) {
      const since = c.secondaryWaitingSince();
      if (since !== -1 && !c.diverged && now - since > limit) {
        if (isClientReset(c)) this.abandon(c);
        else this.mismatch(c, timeoutMismatch(`secondary output waited ${toMicroseconds(now - since)} ms for the primary's`));
      }
      if (c instanceof TcpConnection) {
        if (c.sentToSecondary !== null) this.redeliver(c, now, REDELIVER_SCAN, false);
        if (c.held.length === 0) c.trimMemory();
      }
    }
  }

  /**
   * A connection the client reset, whose output waited past the timeout: what one guest sent and
   * the other had not yet when the client's RST reached them can never reach the client, and how
   * far each had got is timing, not state (a browser cancelling a download). Its held frames are
   * released, its secondary output waiting is dropped, and no checkpoint is asked for; bytes both
   * guests sent were compared as they came, so a real difference among them still was one.
   */
  private abandon(c: TcpConnection): void {
    const held = c.held.length;
    while (c.held.length > 0) this.releaseFront(c);
    const waiting = c.secondaryWaitingCount();
    this.counters.secondaryWaitingFrames -= waiting;
    c.dropSecondaryWaiting();
    if (held > 0 || waiting > 0) this.event('flow.client_reset', c.flow, `${held} primary frames released, ${waiting} secondary segments dropped without waiting longer for the other guest's`);
  }

  /**
   * `c` left the table: evicted, or replaced by a new connection on its ports. Held primary frames
   * stay in the global queue until the checkpoint; secondary output waiting for the primary's is
   * dropped. Either way that takes a checkpoint, asked for here (unless one is pending and this
   * is an idle eviction), and until then a connection opened under the same key holds everything
   * (`blocked`): its frames must not overtake these, nor be compared against a stream cut short.
   */
  private removed(c: Connection, reason: EvictionReason | 'reused'): void {
    c.evicted = true;
    this.touched.delete(c);
    if (c.paired !== null && this.pairing.forget(c.paired) && c instanceof MessageConnection) {
      // No teardown tells when a datagram flow is over (a DNS query's is at its answer): its
      // mapping goes with its idle time, as in a NAT, and an application that stays silent longer
      // finds its peer's next datagram misaddressed on the SVM (a divergence, then a checkpoint).
      this.event('flow.mapping_expired', c.flow, `the SVM's port ${c.paired.secondaryPort} for the PVM's ${c.paired.primaryPort} is forgotten`);
    }
    const waiting = c.secondaryWaitingCount();
    this.counters.secondaryWaitingFrames -= waiting;
    c.dropSecondaryWaiting();
    this.counters.connectionsClosed++;
    const held = c.held.length;
    // Translate mode: a connection not finished whose SVM numbers differ, gone from a full table
    // or established and idle past TRANSLATED_IDLE_MS, would come back as the identity (picked up
    // mid-stream) and its SVM output be compared unmapped.
    const translated = c instanceof TcpConnection && !c.finished && svmNumbersDiffer(c) &&
      (reason === 'full' || (reason === 'idle' && c.idleKind === IDLE_TRANSLATED));
    if (held === 0 && waiting === 0 && !translated) return;
    this.blockedKeys.set(c.key, [...(this.blockedKeys.get(c.key) ?? []), ...(c instanceof MessageConnection ? c.unanswered() : [])]);
    const what = `${held} primary frames held, ${waiting} secondary ${c instanceof TcpConnection ? 'segments' : 'messages'} waiting${translated ? ', the SVM\'s sequence offset' : ''}`;
    const code = reason === 'full' ? 'flow.evicted_full' : reason === 'idle' ? 'flow.evicted_idle' : 'flow.reused';
    this.event(code, c.flow, `${what}; held frames are released after the checkpoint`);
    if (reason === 'idle' && this.checkpointPending) return;
    const why = reason === 'reused' ? 'a new connection (SYN) on its ports' : `connection evicted (${reason})`;
    this.mismatch(c, { reason: reason === 'reused' ? 'tcp.reused' : 'table_full', position: -1, offset: 0, primaryHex: '', secondaryHex: '', detail: `${why} with ${what}` });
  }
}

/** Milliseconds rounded to the microsecond, for details: caller times are often fractional (performance.now). */
function toMicroseconds(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A TCP connection the client reset (translate mode, where the core sees the client's frames). */
function isClientReset(c: unknown): c is TcpConnection {
  return c instanceof TcpConnection && c.clientReset;
}

/**
 * The least idle time after which an established translate-mode connection whose SVM numbers
 * differ is forgotten: Linux's default keepalive time (tcp_keepalive_time, 2 h) and a margin for
 * a late probe, so that a connection kept alive by probes is never forgotten, and one whose client
 * vanished eventually is (with a checkpoint: its offsets go with it, see `removed`).
 */
const TRANSLATED_IDLE_MS = (2 * 3600 + 15 * 60) * 1000;

/**
 * The least time a closed translate-mode connection whose SVM numbers differ stays: longer than a
 * Linux guest goes on sending on a connection it has closed (a FIN resent from LAST-ACK or
 * FIN-WAIT-1 with backoff for tcp_orphan_retries, about 100 s by default; TIME-WAIT's 60 s).
 */
const TRANSLATED_CLOSED_LINGER_MS = 180_000;

/** Who sent a SYN looked up by `connection`, for `newIncarnation`; NO_SOURCE for any other frame. */
const NO_SOURCE = -1;
const SOURCE_CLIENT = 0;
const SOURCE_PRIMARY = 1;
const SOURCE_SECONDARY = 2;

/**
 * True when a SYN (or SYN-ACK) with sequence number `seq` from `source` opens a new connection on
 * the ports of `c`: when `c` has closed (FIN or RST seen), any SYN but a resend of the one that
 * source sent on `c`, except a guest's first on `c` while the other guest's waits for it (a guest
 * that lags a whole short connection behind the other); when it has not closed, a guest's SYN with
 * another ISN than the one it sent on `c` after the handshake, or any guest SYN on a connection
 * picked up mid-stream that is comparing and saw no SYN from either guest (its old socket is gone:
 * pre-translated mode never sees the client's RST). A client's SYN on a live connection is not one: the guests answer it with an
 * ACK (RFC 5961), unless the guests have sent nothing on it (a stray client segment made it).
 */
function newIncarnation(c: Connection, source: number, seq: number): boolean {
  if (!(c instanceof TcpConnection)) return false;
  const isn = source === SOURCE_CLIENT ? c.clientIsn : source === SOURCE_PRIMARY ? c.primaryIsn : c.secondaryIsn;
  if (c.closing) {
    if (isn !== -1 || source === SOURCE_CLIENT) return seq !== isn;
    return c.handshakeDone || (source === SOURCE_PRIMARY ? c.secondarySyn : c.primarySyn) === null;
  }
  // A client's SYN on an entry picked up mid-stream that has seen nothing from the guests (made by
  // a stray client segment, such as an RST for a connection forgotten long ago) opens the
  // connection afresh. (An entry its own SYN just opened has no handshake yet.)
  if (source === SOURCE_CLIENT) {
    return c.handshakeDone && seq !== c.clientIsn && c.primaryAck === -1 && c.secondaryAck === -1 && c.primaryIsn === -1 && c.secondaryIsn === -1 && !c.match.started && c.held.length === 0;
  }
  if (!c.handshakeDone) return false;
  if (isn !== -1) return seq !== isn;
  // This guest sent no SYN on `c`: a new connection if neither guest did (picked up mid-stream)
  // and comparison is under way; with the other guest's in, this one's belongs to `c`.
  return (source === SOURCE_PRIMARY ? c.secondaryIsn : c.primaryIsn) === -1 && c.match.started;
}

/** The kept client segment holding client byte `seq`, the first such in delivery order; undefined when none does. */
function segmentAt(sent: Fifo<SentSegment>, seq: number): SentSegment | undefined {
  const front = sent.peek();
  if (front === undefined || (!seqGt(front.start, seq) && seqGt(front.end, seq))) return front;
  for (const s of sent) if (!seqGt(s.start, seq) && seqGt(s.end, seq)) return s;
  return undefined;
}

/**
 * The latest delivery among the kept segments within [from, to): those whose arrival moved the
 * SVM's ACK from `from` to `to` (0 when none is kept, or `from` is unknown).
 */
function lastDeliveryBelow(sent: Fifo<SentSegment>, from: number, to: number): number {
  if (from === -1) return 0;
  let last = 0;
  for (const s of sent) if (!seqGt(from, s.start) && seqGt(to, s.start) && s.delivery > last) last = s.delivery;
  return last;
}

/**
 * A client segment kept for the SVM, to go to it again: a copy carrying TSval `tsval` when its own
 * is older (see `redeliver`), the TCP checksum updated; the frame itself otherwise.
 */
function withNewestTimestamp(frame: Uint8Array, tsval: number): Uint8Array {
  if (tsval === -1) return frame;
  const f = decodeFrame(frame, LINKTYPE_ETHERNET);
  if (!(f instanceof Frame) || f.transport?.kind !== 'tcp') return frame;
  const tcp = f.transport;
  if (tcp.tsVal === -1 || !seqGt(tsval, tcp.tsVal)) return frame;
  // The copy has the frame's layout: TSval and the checksum at the same offsets (TcpView.setTsVal's write).
  const copy = frame.slice();
  rewriteU32(copy, tcp.timestampOffset, tcp.offset + 16, tsval);
  return copy;
}

/** The client has acknowledged the PVM's FIN on `c` (translate mode, where the core sees the client's frames). */
function outputFinAcked(c: TcpConnection): boolean {
  return c.outputFinEnd !== -1 && c.clientAck !== -1 && !seqGt(c.outputFinEnd, c.clientAck);
}

/** Translate mode: the SVM's sequence numbers, timestamps or port differ from the PVM's on `c` (learned, not yet reset by a checkpoint). */
function svmNumbersDiffer(c: TcpConnection): boolean {
  const t = c.translation;
  return t !== null && t.known && (t.seqOffset !== 0 || t.tsOffset !== 0 || c.paired !== null);
}

/**
 * Whether a client RST at `seq` resets the guests' connection: Linux (and RFC 5961 §3.2) takes an
 * RST at RCV.NXT, the client's next byte, and discards one elsewhere, or answers it with an ACK;
 * the connection stays open. RCV.NXT is the end of what the client sent (all of which reached the
 * guests), or what the PVM last acknowledged (an RST answering a guest's segment carries its ACK,
 * RFC 9293 §3.10.7.1). After the client's FIN Linux also takes RCV.NXT - 1, the FIN's own number
 * (tcp_reset_check: an abort after close, as macOS's SO_LINGER 0 sends); an RST at the end of the
 * guest's highest SACK block, which it also takes, is not: its SACK blocks are not followed here.
 * A guest that opened the connection and has had no answer (SYN-SENT) takes any RST whose ACK
 * acknowledges its SYN (RFC 9293 §3.10.7.3): a refused connection.
 */
function resets(c: TcpConnection, rst: TcpView): boolean {
  const seq = rst.seq;
  if (c.clientIsn === -1 && c.primaryIsn !== -1 && rst.isAck) return rst.ack === seqAdd(c.primaryIsn, 1);
  return seq === c.clientEnd || seq === c.primaryAck || (c.clientFin && seq === seqAdd(c.clientEnd, -1));
}

/**
 * Whether a primary segment ending at `end` has nothing left to compare: everything up to its end
 * verified, or (NO_UNITS) nothing in it to compare. Until both sides' starts are known (mid-stream
 * pickup) nothing has been verified.
 */
function covered(c: TcpConnection, end: number): boolean {
  return end === NO_UNITS || (c.match.started && end <= c.match.verified);
}

/** The ACK gate: the SVM has acknowledged at least `ack` of the client's data (-1: no ACK to check). */
function ackReached(c: TcpConnection, ack: number): boolean {
  return ack === -1 || (c.secondaryAck !== -1 && !seqGt(ack, c.secondaryAck));
}

function messageReason(cls: FlowClass): MismatchReason {
  if (cls === 'udp') return 'udp.payload';
  if (cls === 'icmp') return 'icmp.payload';
  if (cls === 'ip') return 'ip.payload';
  return 'frame.payload';
}

function tagsOf(f: Frame): string {
  const link = f.link;
  return link === null || link.tagCount === 0 ? '' : toHex(f.bytes, link.offset + 12, link.tagCount * 4);
}

function limitMismatch(detail: string): Mismatch {
  return { reason: 'queue_full', position: -1, offset: 0, primaryHex: '', secondaryHex: '', detail };
}

function timeoutMismatch(detail: string): Mismatch {
  return { reason: 'timeout', position: -1, offset: 0, primaryHex: '', secondaryHex: '', detail };
}
