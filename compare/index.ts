/**
 * The public entry of the comparator core. `proxy/` imports from here and nowhere else in
 * `compare/`, so the core's internal layout can change without touching the I/O side.
 */

export * from './wire/bytes.js';
export * from './wire/error.js';
export * from './wire/link.js';
export * from './wire/ethernet.js';
export * from './wire/seq.js';
export * from './wire/checksum.js';
export * from './wire/ip.js';
export * from './wire/arp.js';
export * from './wire/ipv4.js';
export * from './wire/ipv6.js';
export * from './wire/tcp.js';
export * from './wire/udp.js';
export * from './wire/icmp.js';
export * from './wire/icmpv6.js';
export * from './wire/frame.js';

export * from './events.js';
export * from './config.js';
export * from './actions.js';
export { Counters } from './decide/counters.js';
export type { Mismatch } from './match/mismatch.js';
export { HEX_CONTEXT } from './match/mismatch.js';
export type { BytesEqual } from './match/bytes-equal.js';
export { jsBytesEqual } from './match/bytes-equal.js';
export { createComparator, type Comparator } from './comparator.js';
export * from './wire/emit.js';
export * from './rewrite/translation.js';
export * from './rewrite/pairing.js';
export { HEADER_FIELDS, type HeaderField } from './match/headers.js';
export { flowKey, describeKey, framesFlowName, UNDECODABLE_KEY } from './flow/key.js';
