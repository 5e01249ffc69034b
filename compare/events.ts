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
  'tcp.syn_options': 'SYN or SYN-ACK option sets differ (MSS, window scale, SACK-permitted)',
  'tcp.handshake': 'SYN or SYN-ACK on one side only, or SYN against SYN-ACK',
  'udp.payload': 'UDP datagrams in the same place of the flow differ (ports, length or bytes)',
  'icmp.payload': 'ICMP or ICMPv6 messages in the same place of the flow differ',
  'ip.payload': 'packets of another IP protocol in the same place of the flow differ',
  'frame.payload': 'non-IP frames in the same place of the flow differ',
  'vlan': 'the frames carry different VLAN tags',
  'timeout': 'a primary frame was held longer than compareTimeoutMs',
  'queue_full': 'a per-connection queue reached its frame or byte limit',
  'table_full': 'the connection table was full and evicted a connection holding frames',
} as const;

export type MismatchReason = keyof typeof MISMATCH_REASONS;
