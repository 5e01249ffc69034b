/**
 * Matching of message-like flows: UDP, ICMP/ICMPv6, other IP protocols and non-IP frames. Each
 * flow is compared in FIFO order, the n-th primary message against the n-th secondary one, so a
 * PVM that is several datagrams ahead just waits for the SVM (QEMU compares against the newest
 * packet and mismatches there). What is compared is what the guest chose: the VLAN tags, the
 * transport header fields that carry meaning (ports; ICMP type, code and rest of header), the IP
 * options or extension headers the guest chose (ip-options.ts) and the payload. IP header noise (ID, TTL, TOS, flow label) and checksums are not compared, and the
 * lengths come from the IP header, so Ethernet padding never counts. Non-IP frames compare from
 * the EtherType on; ARP stops at the end of its addresses, so its padding is ignored too.
 *
 * In translate mode the SVM received client frames rewritten by the core (port, ACK, SACK,
 * timestamp echo, checksums): a guest's ICMP error quoting such a frame quotes what that guest
 * received, so `withoutClientRewrites` blanks those fields of the quote before comparing.
 */

import type { Frame } from '../wire/frame.js';
import { quotedTransport } from '../wire/icmp-quote.js';
import type { SlabCopier } from '../wire/slab.js';
import { headerSignature, type HeaderField } from './headers.js';
import { ipOptionsOf } from './ip-options.js';
import type { MismatchReason } from '../events.js';
import type { BytesEqual } from './bytes-equal.js';
import { firstDifference, hexWindow, type Mismatch } from './mismatch.js';

/** The byte ranges of a message that are compared: a header part and a payload part. */
export class MessageParts {
  constructor(
    readonly bytes: Uint8Array,
    readonly headAt: number,
    readonly headLength: number,
    readonly bodyAt: number,
    readonly bodyLength: number,
    /** Offset and length of the VLAN tags (0 length when untagged). */
    readonly tagsAt: number,
    readonly tagsLength: number,
    /** The configured header fields' values (`headerSignature`), '' when none are compared. */
    readonly headers = '',
  ) {}

  /** The same parts over `bytes` (a copy of the frame, same offsets). */
  rebased(bytes: Uint8Array): MessageParts {
    return new MessageParts(bytes, this.headAt, this.headLength, this.bodyAt, this.bodyLength, this.tagsAt, this.tagsLength, this.headers);
  }

  /** The same parts less the first `head` bytes of the header part and the first `body` of the payload part. */
  skipping(head: number, body: number): MessageParts {
    return new MessageParts(this.bytes, this.headAt + head, this.headLength - head, this.bodyAt + body, this.bodyLength - body, this.tagsAt, this.tagsLength, this.headers);
  }

  /** The same parts with a header signature. */
  withHeaders(headers: string): MessageParts {
    return new MessageParts(this.bytes, this.headAt, this.headLength, this.bodyAt, this.bodyLength, this.tagsAt, this.tagsLength, headers);
  }
}

/**
 * The compared parts of a decoded frame of class udp, icmp, ip or frame, with the header fields
 * listed and the IP options or extension headers the guest chose (ip-options.ts) in `headers`.
 */
export function messageParts(frame: Frame, headers: readonly HeaderField[] = []): MessageParts {
  const p = bodyParts(frame);
  const options = ipOptionsOf(frame);
  if (headers.length === 0 && options === '') return p;
  const listed = headerSignature(frame, headers);
  return p.withHeaders(options === '' ? listed : `${listed}${listed === '' ? '' : ' '}ip.options=${options}`);
}

/** ICMP Timestamp and Timestamp Reply (RFC 792), and their one length. */
const ICMP_TIMESTAMP = 13;
const ICMP_TIMESTAMP_REPLY = 14;
const ICMP_TIMESTAMP_LENGTH = 20;

function bodyParts(frame: Frame): MessageParts {
  const b = frame.bytes;
  const link = frame.link;
  const tagsAt = link === null ? 0 : link.offset + 12;
  const tagsLength = link === null ? 0 : link.tagCount * 4;
  const t = frame.transport;
  if (t !== null) {
    if (t.kind === 'udp') return new MessageParts(b, t.offset, 4, frame.payloadOffset, frame.payloadLength, tagsAt, tagsLength);
    if (t.kind === 'icmp' || t.kind === 'icmpv6') {
      const type = b[t.offset]!;
      if (t.kind === 'icmp' && t.length === ICMP_TIMESTAMP_LENGTH && (type === ICMP_TIMESTAMP || type === ICMP_TIMESTAMP_REPLY)) {
        // Timestamp messages (RFC 792) carry the sender's own clock, which is the twins' own as
        // TCP timestamps are: a request's originate timestamp, a reply's receive and transmit
        // ones (its originate one echoes the client's). Compared: type, code, identifier,
        // sequence number, and a reply's originate timestamp.
        return new MessageParts(b, t.offset, 2, t.offset + 4, type === ICMP_TIMESTAMP_REPLY ? 8 : 4, tagsAt, tagsLength);
      }
      // type and code, then (after the checksum) the rest of the header and the body
      return new MessageParts(b, t.offset, 2, t.offset + 4, t.length - 4, tagsAt, tagsLength);
    }
  }
  const net = frame.network;
  if (net !== null && net.kind === 'arp') return new MessageParts(b, 0, 0, frame.networkOffset - 2, net.length + 2, tagsAt, tagsLength);
  if (net !== null) return new MessageParts(b, 0, 0, frame.payloadOffset, frame.payloadLength, tagsAt, tagsLength);
  return new MessageParts(b, 0, 0, Math.max(0, frame.networkOffset - 2), b.length - Math.max(0, frame.networkOffset - 2), tagsAt, tagsLength);
}

/**
 * `parts` of `frame`, a guest's ICMP or ICMPv6 error, over a copy in which the fields of the
 * quoted packet that the core rewrites in client frames for the SVM (translate mode) are zero:
 * the guest-side (destination) port, the UDP and TCP checksums, the TCP ACK and options. Only a
 * quote of a TCP or UDP packet sent to the guest (its destination the error's source) is touched;
 * any other frame gives `parts` back. What the guest chose, the error and which packet it quotes
 * (addresses, the remote's port, sequence number, payload), is still compared.
 */
export function withoutClientRewrites(frame: Frame, parts: MessageParts): MessageParts {
  const q = quotedTransport(frame, 'source-received');
  if (q === null) return parts;
  const copy = frame.bytes.slice();
  const blank = (from: number, to: number): void => {
    copy.fill(0, Math.min(q.at + from, q.end), Math.min(q.at + to, q.end));
  };
  blank(2, 4);
  if (q.protocol === 17) {
    blank(6, 8);
  } else {
    blank(8, 12);
    blank(16, 18);
    if (q.at + 13 <= q.end) blank(20, (copy[q.at + 12]! >> 4) * 4);
  }
  return parts.rebased(copy);
}

/** The parts of a frame that did not decode: the whole frame. */
export function wholeFrameParts(bytes: Uint8Array): MessageParts {
  return new MessageParts(bytes, 0, 0, 0, bytes.length, 0, 0);
}

/** Copies `p`'s bytes so they outlive the caller's frame; offsets are kept. */
export function ownParts(p: MessageParts, copier: SlabCopier): MessageParts {
  return p.rebased(copier.copy(p.bytes));
}

/**
 * Compares a primary message with a secondary one; returns null when they match, else the
 * mismatch with `reason`, `position` = `index` (the message's place in its flow).
 */
export function compareMessages(p: MessageParts, s: MessageParts, reason: MismatchReason, index: number, equal: BytesEqual): Mismatch | null {
  if (p.tagsLength !== s.tagsLength || !equal(p.bytes, p.tagsAt, s.bytes, s.tagsAt, p.tagsLength)) {
    return {
      reason: 'vlan', position: index, offset: 0,
      primaryHex: hexWindow(p.bytes.subarray(p.tagsAt, p.tagsAt + p.tagsLength), 0),
      secondaryHex: hexWindow(s.bytes.subarray(s.tagsAt, s.tagsAt + s.tagsLength), 0),
      detail: `VLAN tags differ (${p.tagsLength / 4} tag(s) against ${s.tagsLength / 4})`,
    };
  }
  if (p.headLength !== s.headLength || !equal(p.bytes, p.headAt, s.bytes, s.headAt, p.headLength)) {
    const at = Math.max(0, firstDifference(p.bytes, p.headAt, s.bytes, s.headAt, Math.min(p.headLength, s.headLength)));
    return {
      reason, position: index, offset: at,
      primaryHex: hexWindow(p.bytes.subarray(p.headAt, p.headAt + p.headLength), at),
      secondaryHex: hexWindow(s.bytes.subarray(s.headAt, s.headAt + s.headLength), at),
      detail: 'header fields differ (ports, or ICMP type and code)',
    };
  }
  if (p.headers !== s.headers) {
    return { reason: 'header', position: index, offset: 0, primaryHex: '', secondaryHex: '', detail: `${p.headers} against ${s.headers}` };
  }
  const same = p.bodyLength === s.bodyLength && equal(p.bytes, p.bodyAt, s.bytes, s.bodyAt, p.bodyLength);
  if (same) return null;
  const common = Math.min(p.bodyLength, s.bodyLength);
  const diff = firstDifference(p.bytes, p.bodyAt, s.bytes, s.bodyAt, common);
  const at = diff === -1 ? common : diff;
  return {
    reason, position: index, offset: at,
    primaryHex: hexWindow(p.bytes.subarray(p.bodyAt, p.bodyAt + p.bodyLength), at),
    secondaryHex: hexWindow(s.bytes.subarray(s.bodyAt, s.bodyAt + s.bodyLength), at),
    detail: p.bodyLength === s.bodyLength
      ? `payload differs at byte ${at} of ${p.bodyLength}`
      : `payload length ${p.bodyLength} against ${s.bodyLength}${diff === -1 ? '' : `, first difference at byte ${at}`}`,
  };
}
