/**
 * Every reason the comparator asks for a checkpoint, and every other event it reports, in one
 * table. The codes are stable dotted names: they are metric label values, log fields and the
 * words of replay reports, so renaming one is a breaking change. `decode.*` codes come from the
 * wire layer (`WireError.code`) and are not repeated here.
 */

/** Why the primary's and the secondary's output were judged different (or could not be compared). */
export const MISMATCH_REASONS = {
  'tcp.payload': 'the same TCP sequence range carries different bytes',
  'tcp.length': 'one side ended its byte stream (FIN) where the other sent more data',
  'tcp.fin_rst': 'FIN or RST on one side only, or at a different sequence point',
  'tcp.retransmit_inconsistent': 'one side sent different bytes for a sequence range it had already sent',
  'tcp.syn_options': 'SYN or SYN-ACK option sets differ (MSS, window scale, SACK-permitted, timestamps, ECN, TCP-MD5, TCP-AO, Multipath TCP)',
  'tcp.handshake': 'SYN or SYN-ACK on one side only, or SYN against SYN-ACK',
  'tcp.urgent': 'urgent data (URG) on one side only, or ending at a different point of the stream',
  'tcp.signed': 'a TCP-MD5 or TCP-AO connection (RFC 2385, 5925) whose SVM sequence numbers (or timestamps, or port) differ from the PVM\'s: its segments cannot be translated without the key, so a checkpoint makes them the PVM\'s',
  'tcp.reused': 'a new connection (SYN) reused the ports of a closed one that still held frames or had secondary output waiting',
  'tcp.unassembled': 'the IP fragments of a TCP segment could not be reassembled (an overlap with different bytes, a limit, a timeout) or do not decode once they were: its bytes cannot take their place in the stream',
  'udp.payload': 'UDP datagrams in the same place of the flow differ (ports, length or bytes)',
  'icmp.payload': 'ICMP or ICMPv6 messages in the same place of the flow differ',
  'ip.payload': 'packets of another IP protocol in the same place of the flow differ',
  'frame.payload': 'non-IP frames in the same place of the flow differ',
  'vlan': 'the frames carry different VLAN tags',
  'header': 'a header field listed in compareHeaders differs (TTL, TOS, IP ID, flow label, window, options, checksums), or the IP options or IPv6 extension headers a guest chose',
  'timeout': 'a primary frame was held longer than compareTimeoutMs',
  'queue_full': 'a per-connection queue reached its frame or byte limit',
  'table_full': 'the connection table evicted a connection holding frames, with secondary output waiting or (translate mode) with the SVM\'s sequence offset: because it was full, or (translate mode) idle past 2 h 15 min',
} as const;

export type MismatchReason = keyof typeof MISMATCH_REASONS;

/**
 * Events that are not mismatches: counted in `Counters.events` and reported as `event` actions.
 * `decode.*` codes (a frame that did not decode; it is then compared whole) come from the wire
 * layer and are not listed.
 */
export const EVENT_CODES = {
  'flow.midstream': 'a TCP connection was first seen after its handshake; comparison starts mid-stream',
  'flow.evicted_full': 'the connection table was full and evicted a connection holding primary frames or with secondary output waiting',
  'flow.evicted_idle': 'an idle connection was forgotten while holding primary frames or with secondary output waiting',
  'flow.mapping_expired': 'translate mode: a UDP flow or ping the guests opened from different ports (identifiers) went idle past idleTimeoutMs (or a full table evicted it) and its port mapping was forgotten, as a NAT forgets one: a later datagram from the peer reaches the SVM at the PVM\'s port',
  'flow.client_reset': 'output of a connection the client had reset waited past compareTimeoutMs for the other guest\'s: released (primary) or dropped (secondary), no checkpoint',
  'flow.reused': 'a new connection (SYN) reused the ports of a closed one that still held primary frames or had secondary output waiting',
  'tcp.stale_segment': 'translate mode: a guest segment other than a SYN-ACK on a connection the client had just opened, before that guest\'s SYN-ACK: the previous connection\'s on the same ports; released (primary) or dropped (secondary) uncompared',
  'fragment.timeout': 'a fragmented datagram was not complete within compareTimeoutMs; its fragments are compared one by one (a TCP segment\'s: tcp.unassembled)',
  'fragment.overlap_inconsistent': 'IPv4 fragments overlap with different bytes; compared one by one (a TCP segment\'s: tcp.unassembled)',
  'fragment.overlap_ipv6': 'IPv6 fragments overlap (RFC 5722); compared one by one (a TCP segment\'s: tcp.unassembled)',
  'fragment.bad_length': 'an empty fragment, or a non-final one whose length is not a multiple of 8',
  'fragment.end_inconsistent': 'two final fragments with different ends, or bytes past the final end',
  'fragment.too_big': 'fragments add up to more than 65535 bytes',
  'fragment.limit': 'too many fragmented datagrams (or bytes) pending; the oldest is compared one by one',
  'fragment.after_checkpoint': 'a fragment of a datagram a checkpoint cut (its first fragments left in the flush): primary released at once, secondary dropped',
  'client.rst_ignored': 'translate mode: a client RST not at the guests\' receive point (RCV.NXT), which they discard or answer with an ACK (RFC 5961): the connection is not taken as reset',
  'client.redelivered': 'client data the SVM had not acknowledged, though the PVM had, was delivered to the SVM again (counted only, not reported as an action)',
  'client.discarded': 'client frames waiting for the SVM\'s sequence translation were dropped at a checkpoint (the SVM now has the PVM\'s state, which already holds them)',
} as const;

export type EventCode = keyof typeof EVENT_CODES;
