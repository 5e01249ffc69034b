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
