/**
 * Shared frames for the wire tests: readable hex split at layer boundaries, one comment per
 * packet. All checksums are correct (tshark validates them in tshark.test.ts). Every call
 * returns a fresh copy, so a test may mutate what it gets.
 */

import { fromHex } from '../../../compare/wire/bytes.js';

const HEX = {
  // Ethernet/IPv4/TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80, seq 0x11223344; MSS 1460, SACK-permitted, TS 0x01020304/0, NOP, WS 7.
  syn4: '525400123456 525400abcdef 0800  4500003c 1c46 4000 4006 0a74 0a000001 0a000002'
    + '  9c40 0050 11223344 00000000 a002 faf0 5410 0000  020405b4 0402 080a 01020304 00000000 01 030307',
  // Ethernet/IPv4/TCP PSH|ACK seq 0x11223345 ack 0x55667788, NOP NOP TS 0x01020305/0x0a0b0c0d, payload "hello".
  data4: '525400123456 525400abcdef 0800  45000039 1c47 4000 4006 0a76 0a000001 0a000002'
    + '  9c40 0050 11223345 55667788 8018 01f6 54e0 0000  0101080a 01020305 0a0b0c0d  68656c6c6f',
  // Ethernet/IPv4/TCP pure ACK, no options, 6 bytes of Ethernet padding to reach 60 bytes.
  ack4: '525400123456 525400abcdef 0800  45000028 1c48 4000 4006 0a86 0a000001 0a000002'
    + '  9c40 0050 1122334a 55667788 5010 01f6 ebf0 0000  000000000000',
  // Ethernet/IPv4/TCP ACK 10.0.0.2:80 -> 10.0.0.1:40000, NOP NOP TS, NOP NOP SACK with two blocks.
  sack4: '525400123456 525400abcdef 0800  45000048 1c49 4000 4006 0a65 0a000002 0a000001'
    + '  0050 9c40 55667788 1122334a d010 01f6 b2e0 0000  0101080a 0a0b0c0e 01020305 0101 0512 11223c4a 11224a4a 11225a4a 11226a4a',
  // Ethernet/IPv4/UDP 10.0.0.1:5353 -> 10.0.0.2:53, payload deadbeef, 10 bytes of padding.
  udp4: '525400123456 525400abcdef 0800  45000020 0001 0000 4011 66ca 0a000001 0a000002'
    + '  14e9 0035 000c 3918 deadbeef  00000000000000000000',
  // Ethernet/IPv4/ICMP echo request id 0x1234 seq 1, payload "abcd", 10 bytes of padding.
  icmp4: '525400123456 525400abcdef 0800  45000020 0002 0000 4001 66d9 0a000001 0a000002'
    + '  0800 2104 1234 0001 61626364  00000000000000000000',
  // Ethernet/IPv6/TCP SYN fd00::1 port 40000 -> fd00::2 port 443; MSS 1440, SACK-permitted, TS 1/0, NOP, WS 7.
  syn6: '525400123456 525400abcdef 86dd  6000 0000 0028 06 40 fd000000000000000000000000000001 fd000000000000000000000000000002'
    + '  9c40 01bb 01020304 00000000 a002 fd20 aeec 0000  020405a0 0402 080a 00000001 00000000 01 030307',
  // Ethernet/IPv6/UDP fd00::1:5353 -> fd00::2:53, payload "abc".
  udp6: '525400123456 525400abcdef 86dd  6000 0000 000b 11 40 fd000000000000000000000000000001 fd000000000000000000000000000002'
    + '  14e9 0035 000b 2c53 616263',
  // Ethernet/IPv6/ICMPv6 echo request fd00::1 -> fd00::2 id 7 seq 9, payload "abcd".
  ping6: '525400123456 525400abcdef 86dd  6000 0000 000c 3a 40 fd000000000000000000000000000001 fd000000000000000000000000000002'
    + '  8000 c0dd 0007 0009 61626364',
  // Ethernet ARP request (Ethernet/IPv4): who has 10.0.0.2, tell 10.0.0.1 (52:54:00:ab:cd:ef), 18 bytes of padding.
  arp: 'ffffffffffff 525400abcdef 0806  0001 0800 06 04 0001 525400abcdef 0a000001 000000000000 0a000002'
    + '  000000000000000000000000000000000000',
} as const;

export type FixtureName = keyof typeof HEX;

/** A fresh copy of the named fixture frame. */
export function fixture(name: FixtureName): Uint8Array {
  return fromHex(HEX[name]);
}

/** Every fixture name. */
export const FIXTURE_NAMES = Object.keys(HEX) as FixtureName[];
