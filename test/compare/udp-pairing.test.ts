// Translate mode: a UDP flow the guests open (a resolver's query, say) from different random
// source ports, or a ping each guest runs with its own echo identifier. Their datagrams must meet
// in one flow, the server's reply must reach the SVM on its own port (identifier), and real
// differences must still be found.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Frame, IcmpView, Icmpv6View, UdpView, decodeFrame } from '../../compare/index.js';
import { pseudoSumV4, pseudoSumV6, verifyTransportChecksum } from '../../compare/wire/checksum.js';
import { emitIcmpEcho, emitUdp, type IcmpEchoFields, type UdpFields } from '../../compare/wire/emit.js';
import { GUEST, Twins, payloadText } from '../support/twins.js';
import { split } from '../support/fragments.js';

const SERVER = '192.0.2.53';

/** A guest's query from `port` to SERVER:53. */
function query(port: number, payload: string, f: Partial<UdpFields> = {}): Uint8Array {
  return emitUdp({ src: GUEST, dst: SERVER, srcPort: port, dstPort: 53, payload, ...f });
}

/** The server's answer to `port`. */
function answer(port: number, payload: string, f: Partial<UdpFields> = {}): Uint8Array {
  return emitUdp({ src: SERVER, dst: GUEST, srcPort: 53, dstPort: port, payload, ...f });
}

function udpOf(bytes: Uint8Array): { frame: Frame; udp: UdpView } {
  const frame = decodeFrame(bytes);
  assert.ok(frame instanceof Frame && frame.transport instanceof UdpView);
  return { frame, udp: frame.transport };
}

describe('translate mode: guest-initiated UDP flows whose guests chose different ports', () => {
  for (const svmFirst of [false, true]) {
    test(`paired by destination: compared as one flow, replies reach the SVM's port (${svmFirst ? 'SVM' : 'PVM'} first)`, () => {
      const t = new Twins({ mode: 'translate' });
      if (svmFirst) t.secondary(query(44000, 'who is example.org'));
      t.primary(query(33000, 'who is example.org'));
      if (!svmFirst) t.secondary(query(44000, 'who is example.org'));
      assert.deepEqual(t.releasedPayloads(), ['who is example.org']);
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);

      const reply = answer(33000, 'example.org is 192.0.2.80');
      t.client(reply);
      assert.deepEqual(t.delivered('primary'), [reply], 'the PVM gets the reply unchanged');
      const [toSvm] = t.delivered('secondary');
      const { frame, udp } = udpOf(toSvm!);
      assert.equal(udp.dstPort, 44000, 'the SVM gets it on its own port');
      assert.ok(verifyTransportChecksum(pseudoSumV4(frame.bytes, 14, 17, udp.length), frame.bytes, udp.offset, udp.length), 'with a valid checksum');
      assert.equal(payloadText(toSvm!), 'example.org is 192.0.2.80');

      t.primary(query(33000, 'and example.net'));
      t.secondary(query(44000, 'and example.net'));
      assert.deepEqual(t.releasedPayloads(), ['who is example.org', 'and example.net']);
      assert.deepEqual(t.checkpoints(), []);
    });
  }

  test('a paired flow whose payloads differ is still a udp.payload mismatch', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(query(33000, 'one'));
    t.secondary(query(44000, 'one'));
    t.primary(query(33000, 'two'));
    t.secondary(query(44000, 'TWO'));
    assert.deepEqual(t.checkpoints(), ['udp.payload']);
    assert.deepEqual(t.releasedPayloads(), ['one']);
  });

  test('a remapped flow idle past the idle timeout loses its mapping, as in a NAT, and says so; one on the same port has none to lose', () => {
    const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000, scanIntervalMs: 1000 });
    t.primary(query(33000, 'remapped'), 0);
    t.secondary(query(44000, 'remapped'), 0);
    t.primary(query(35000, 'same port'), 0);
    t.secondary(query(35000, 'same port'), 0);
    t.advanceTo(310_000);
    assert.equal(t.c.counters.events.get('flow.mapping_expired'), 1, 'only the remapped flow');
    assert.equal(t.c.counters.connectionsClosed, 2);
    t.client(answer(33000, 'late'), 310_000);
    assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 33000, 'a peer silent that long reaches the SVM at the PVM\'s port (see the event)');
  });

  test('two flows to one destination pair in the order the guests opened them', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(query(33000, 'first'));
    t.primary(query(33001, 'second'));
    t.secondary(query(44000, 'first'));
    t.secondary(query(44001, 'second'));
    assert.deepEqual(t.releasedPayloads(), ['first', 'second']);
    assert.deepEqual(t.checkpoints(), []);
    t.client(answer(33001, 'for the second'));
    assert.equal(udpOf(t.delivered('secondary')[0]!).udp.dstPort, 44001);
  });

  for (const svmFirst of [false, true]) {
    test(`ports crossed: the SVM's new flow from the port the PVM's other flow there uses is paired, not taken for that flow (${svmFirst ? 'SVM' : 'PVM'} first)`, () => {
      // First flow: PVM 33000, SVM 44000. Second flow to the same server: PVM 35000, and the SVM
      // happens to pick 33000, the PVM's port of the first, which is still open.
      const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.primary(query(33000, 'first'), 0);
      t.secondary(query(44000, 'first'), 0);
      if (svmFirst) t.secondary(query(33000, 'second'), 10);
      t.primary(query(35000, 'second'), 10);
      if (!svmFirst) t.secondary(query(33000, 'second'), 10);
      t.primary(query(33000, 'first again'), 20);
      t.secondary(query(44000, 'first again'), 20);
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.deepEqual(t.releasedPayloads(), ['first', 'second', 'first again']);
      t.client(answer(35000, 'answer to the second'), 10_000);
      assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 33000, 'the second flow\'s reply reaches the SVM on the port it asked from');
      t.client(answer(33000, 'answer to the first'), 10_000);
      assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 44000);
    });
  }

  test('IPv4 without a UDP checksum keeps none; IPv6 gets a valid one', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(query(33000, 'q'));
    t.secondary(query(44000, 'q'));
    const bare = answer(33000, 'a');
    bare[14 + 20 + 6] = 0;
    bare[14 + 20 + 7] = 0;
    t.client(bare);
    const v4 = udpOf(t.delivered('secondary')[0]!);
    assert.deepEqual([v4.udp.dstPort, v4.udp.checksum], [44000, 0]);

    const six = new Twins({ mode: 'translate' });
    const v6 = { src: 'fd00::2', dst: 'fd00::53' };
    six.primary(query(33000, 'q', v6));
    six.secondary(query(44000, 'q', v6));
    assert.deepEqual(six.checkpoints(), []);
    six.client(answer(33000, 'a', { src: 'fd00::53', dst: 'fd00::2' }));
    const { frame, udp } = udpOf(six.delivered('secondary')[0]!);
    assert.equal(udp.dstPort, 44000);
    assert.ok(verifyTransportChecksum(pseudoSumV6(frame.bytes, 14, 17, udp.length), frame.bytes, udp.offset, udp.length));
  });

  test('a guest-side server (the client spoke first, one port on both guests) needs nothing', () => {
    const t = new Twins({ mode: 'translate' });
    const asked = answer(5353, 'client query');
    t.client(asked);
    assert.deepEqual(t.delivered('secondary'), [asked], 'delivered unchanged');
    t.primary(query(5353, 'reply'));
    t.secondary(query(5353, 'reply'));
    assert.deepEqual(t.releasedPayloads(), ['reply']);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('after a checkpoint the SVM is the PVM: the mapping is gone and both use the PVM\'s port', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(query(33000, 'one'));
    t.secondary(query(44000, 'ONE'));
    assert.deepEqual(t.checkpoints(), ['udp.payload']);
    t.checkpointDone();
    t.client(answer(33000, 'reply'));
    assert.equal(udpOf(t.delivered('secondary')[0]!).udp.dstPort, 33000);
    t.primary(query(33000, 'two'));
    t.secondary(query(33000, 'two'));
    assert.deepEqual(t.releasedPayloads(), ['one', 'two']);
    assert.deepEqual(t.checkpoints(), ['udp.payload']);
  });

  test('a flow that idled out forgets its mapping: the PVM reusing its port pairs afresh', () => {
    const t = new Twins({ mode: 'translate', idleTimeoutMs: 5000, scanIntervalMs: 1000 });
    t.primary(query(33000, 'first'));
    t.secondary(query(44000, 'first'));
    t.advanceTo(20_000);
    assert.equal(t.c.counters.connectionsClosed, 1);
    // The PVM's resolver happens to draw port 33000 again; the SVM's draws another.
    t.primary(query(33000, 'again'));
    t.secondary(query(45000, 'again'));
    assert.deepEqual(t.releasedPayloads(), ['first', 'again']);
    assert.deepEqual(t.checkpoints(), []);
    t.client(answer(33000, 'reply'));
    assert.equal(udpOf(t.delivered('secondary')[0]!).udp.dstPort, 45000);
  });

  // A resolver opens a socket per query: each guest draws a random port, and one may draw the port
  // of an earlier query's flow still in the table (about its queries of the last five minutes
  // over 28,000). The other guest's port is then new, and the two must still pair.
  for (const [first, reuser, svmFirst] of [
    [[33000, 44000], 'PVM', false], [[33000, 44000], 'PVM', true],
    [[33000, 44000], 'SVM', false], [[33000, 44000], 'SVM', true],
    [[35000, 35000], 'PVM', false], [[35000, 35000], 'SVM', true],
  ] as const) {
    test(`a port reused for a new flow while the old one is in the table pairs afresh: ${first[0] === first[1] ? 'same ports before' : 'remapped before'}, the ${reuser} reuses, ${svmFirst ? 'SVM' : 'PVM'} first`, () => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000 });
      const [p0, s0] = first;
      t.primary(query(p0, 'who is example.org'), 0);
      t.secondary(query(s0, 'who is example.org'), 0);
      t.client(answer(p0, 'example.org is 192.0.2.80'), 20);
      // Ten seconds on, the next query: one guest draws its old port, the other a new one.
      const [p1, s1] = reuser === 'PVM' ? [p0, 45000] : [34000, s0];
      if (svmFirst) t.secondary(query(s1, 'who is example.net'), 10_000);
      t.primary(query(p1, 'who is example.net'), 10_000);
      if (!svmFirst) t.secondary(query(s1, 'who is example.net'), 10_000);
      assert.deepEqual(t.releasedPayloads(), ['who is example.org', 'who is example.net']);
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);
      t.client(answer(p1, 'example.net is 192.0.2.81'), 10_020);
      assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, s1, 'the answer reaches the SVM on its new port');
      t.advanceTo(20_000);
      assert.deepEqual(t.checkpoints(), [], 'nothing left waiting to time out');
    });
  }

  // From the review of the change that pairs ports drawn again: flow F (PVM 33000, SVM 44000) at
  // time 0, then more traffic after a quiet spell.
  describe('after a quiet spell, around a flow that went on', () => {
    const twinsWithF = (): Twins => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000 });
      t.primary(query(33000, 'F0'), 0);
      t.secondary(query(44000, 'F0'), 0);
      return t;
    };
    test('F goes on, then a new flow for which the PVM draws the SVM\'s port of F: not paired by that port', () => {
      const t = twinsWithF();
      t.primary(query(33000, 'F1'), 10_000);
      t.primary(query(44000, 'G1'), 10_000);
      t.secondary(query(44000, 'F1'), 10_000);
      t.secondary(query(45000, 'G1'), 10_000);
      t.advanceTo(20_000);
      assert.deepEqual(t.checkpoints(), []);
      t.client(answer(33000, 'to F'), 20_000);
      assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 44000, 'F keeps its mapping');
    });
    test('F is over; the SVM draws 44000 again and the PVM happens to draw 44000 too', () => {
      const t = twinsWithF();
      t.secondary(query(44000, 'q2'), 10_000);
      t.primary(query(44000, 'q2'), 10_001);
      t.advanceTo(20_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.deepEqual(t.releasedPayloads(), ['F0', 'q2']);
    });
    test('without a controller: the SVM\'s copy after a timeout and resynchronisation is taken as the owed one, PVM first', () => {
      const t = twinsWithF();
      t.primary(query(33000, 'tock'), 10_000);
      t.advanceResynchronizing(14_500);
      t.secondary(query(44000, 'tock'), 14_500);
      t.primary(query(33000, 'tock 2'), 14_600);
      t.secondary(query(44000, 'tock 2'), 14_600);
      t.advanceResynchronizing(30_000);
      assert.deepEqual(t.mismatchReasons(), ['timeout']);
    });
    test('without a controller: the SVM first, the PVM only after the timeout and resynchronisation', () => {
      const t = twinsWithF();
      t.secondary(query(44000, 'tock'), 10_000);
      t.advanceResynchronizing(14_500);
      t.primary(query(33000, 'tock'), 14_500);
      t.advanceResynchronizing(30_000);
      assert.deepEqual(t.mismatchReasons(), ['timeout']);
    });
    test('the SVM\'s datagrams of a flow on a port drawn again stay together and in order when another pairing replaces its mapping first', () => {
      const t = twinsWithF();
      t.secondary(query(45000, 'G1'), 10_000);
      t.secondary(query(44000, 'H1'), 10_001);
      t.primary(query(33000, 'G1'), 10_002);
      t.secondary(query(44000, 'H2'), 10_003);
      t.primary(query(44000, 'H1'), 10_004);
      t.primary(query(44000, 'H2'), 10_005);
      t.advanceTo(20_000);
      assert.deepEqual(t.mismatchReasons(), []);
      assert.deepEqual(t.releasedPayloads(), ['F0', 'G1', 'H1', 'H2']);
    });
    test('after a checkpoint, a flow only the PVM had sent on is the SVM\'s too: its next datagram is no first one', () => {
      const t = new Twins({ mode: 'translate' });
      const other = '192.0.2.99';
      t.primary(query(35000, 'x', { dst: other }), 0);
      t.secondary(query(45000, 'X', { dst: other }), 0); // a real difference: a checkpoint is asked for
      t.primary(query(33000, 'F0'), 10); // the PVM opens F, the SVM has not yet
      t.checkpointDone();
      t.primary(query(33000, 'F1'), 500);
      t.secondary(query(33000, 'F1'), 600);
      t.primary(query(33001, 'G0'), 1000);
      t.secondary(query(33001, 'G0'), 1100);
      t.client(answer(33001, 'to G'), 1200);
      assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 33001);
      t.advanceTo(20_000);
      assert.deepEqual(t.checkpoints(), ['udp.payload']);
    });
    test('a checkpoint after the SVM\'s datagram went back to its flow (its offer expired) resets that flow too', () => {
      const t = twinsWithF();
      t.checkpointDone(); // F is not among the flows the next one resets, unless something touches it again
      t.secondary(query(33000, 'F1'), 10_000);
      t.primary(query(33050, 'elsewhere', { dst: '192.0.2.99' }), 13_500); // the offer has expired by now
      t.checkpointDone();
      t.advanceTo(400_000);
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);
      assert.equal(t.c.counters.connectionsOpened, t.c.counters.connectionsClosed, 'every flow gone idle, none left');
    });
    test('a full table: flows resuming SVM-first take no more room than before', () => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000, maxConnections: 2 });
      const g = { dst: '192.0.2.54' };
      t.primary(query(33000, 'F0'), 0);
      t.secondary(query(44000, 'F0'), 0);
      t.primary(query(33001, 'G0', g), 1);
      t.secondary(query(44001, 'G0', g), 1);
      t.secondary(query(44000, 'F1'), 10_000);
      t.secondary(query(44001, 'G1', g), 10_001);
      t.primary(query(33000, 'F1'), 10_300);
      t.primary(query(33001, 'G1', g), 10_301);
      t.advanceTo(400_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.deepEqual(t.releasedPayloads(), ['F0', 'G0', 'F1', 'G1']);
    });
    test('more flows going on at once than the pairing keeps waiting (1,100 keepalives, the SVM\'s all first)', () => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000, maxConnections: 10_000 });
      const peer = (i: number): string => `198.18.${i >> 8}.${i & 255}`;
      const keepalive = (port: number, i: number, text: string): Uint8Array => emitUdp({ src: GUEST, dst: peer(i), srcPort: port, dstPort: 51820, payload: text });
      for (let i = 0; i < 1100; i++) {
        t.primary(keepalive(33000, i, 'hello'), 0);
        t.secondary(keepalive(44000, i, 'hello'), 0);
      }
      for (let i = 0; i < 1100; i++) t.secondary(keepalive(44000, i, 'keepalive'), 25_000);
      for (let i = 0; i < 1100; i++) t.primary(keepalive(33000, i, 'keepalive'), 25_001);
      t.advanceTo(40_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.released().length, 2200);
    });
    test('a query\'s first datagram among more resumed ones than the pairing keeps waiting: the resumed ones go first', () => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000, maxConnections: 10_000 });
      const peer = (i: number): string => `198.18.${i >> 8}.${i & 255}`;
      const keepalive = (port: number, i: number, text: string): Uint8Array => emitUdp({ src: GUEST, dst: peer(i), srcPort: port, dstPort: 51820, payload: text });
      for (let i = 0; i < 1100; i++) {
        t.primary(keepalive(33000, i, 'hello'), 0);
        t.secondary(keepalive(44000, i, 'hello'), 0);
      }
      t.primary(query(35000, 'who is example.org'), 25_000);
      for (let i = 0; i < 1100; i++) t.primary(keepalive(33000, i, 'keepalive'), 25_001);
      t.secondary(query(45000, 'who is example.org'), 25_050);
      for (let i = 0; i < 1100; i++) t.secondary(keepalive(44000, i, 'keepalive'), 25_051);
      t.advanceTo(40_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.released().length, 2201);
    });
  });

  for (const svmFirst of [false, true]) {
    test(`a flow that resumes after a quiet spell on both guests' old ports is still one flow (${svmFirst ? 'SVM' : 'PVM'} first)`, () => {
      const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000 });
      t.primary(query(33000, 'tick'), 0);
      t.secondary(query(44000, 'tick'), 0);
      for (const [i, at] of [10_000, 25_000, 40_000].entries()) {
        if (svmFirst) t.secondary(query(44000, `tock ${i}`), at);
        t.primary(query(33000, `tock ${i}`), at);
        if (!svmFirst) t.secondary(query(44000, `tock ${i}`), at);
        t.client(answer(33000, `ack ${i}`), at + 5);
        assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 44000);
      }
      // A new flow to the same server afterwards pairs as new flows do.
      t.primary(query(33001, 'new'), 50_000);
      t.secondary(query(44001, 'new'), 50_000);
      t.advanceTo(60_000);
      assert.deepEqual(t.releasedPayloads(), ['tick', 'tock 0', 'tock 1', 'tock 2', 'new']);
      assert.deepEqual(t.checkpoints(), []);
    });
  }

  test('a datagram too large for one frame pairs once reassembled, and the PVM\'s fragments go out', () => {
    const t = new Twins({ mode: 'translate' });
    const big = 'x'.repeat(3000);
    const pvm = split(query(33000, big, { ipId: 1 }), [1480]);
    const svm = split(query(44000, big, { ipId: 2 }), [1000, 2000]);
    for (const f of svm) t.secondary(f);
    for (const f of pvm) t.primary(f);
    assert.deepEqual(t.released(), pvm);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('a reply too large for one frame reaches the SVM in fragments, the first readdressed with the whole datagram\'s checksum (IPv4, IPv6)', () => {
    for (const [guest, server] of [[GUEST, SERVER], ['fd00::2', 'fd00::53']] as const) {
      const t = new Twins({ mode: 'translate' });
      t.primary(query(33000, 'q', { src: guest, dst: server }));
      t.secondary(query(44000, 'q', { src: guest, dst: server }));
      const big = 'a'.repeat(3000);
      const fragments = split(answer(33000, big, { src: server, dst: guest, dontFragment: false, ipId: 7 }), [1232, 2464]);
      for (const f of fragments) t.client(f);
      const toSvm = t.delivered('secondary');
      assert.equal(toSvm.length, 3, guest);
      const first = udpOf(toSvm[0]!);
      const expected = udpOf(answer(44000, big, { src: server, dst: guest }));
      assert.deepEqual(first.frame.bytes.subarray(first.udp.offset, first.udp.offset + 8), expected.frame.bytes.subarray(expected.udp.offset, expected.udp.offset + 8),
        `${guest}: the SVM's port and the checksum the whole datagram to it has`);
      assert.deepEqual(toSvm.slice(1), fragments.slice(1), `${guest}: the later fragments as they came`);
      assert.deepEqual(t.delivered('primary'), fragments);
    }
  });

  test('a full table that evicts the SVM\'s early datagram to open the PVM\'s flow: closed once, nothing left waiting, a checkpoint at once', () => {
    const t = new Twins({ mode: 'translate', maxConnections: 1, compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.secondary(query(44000, 'who is example.org'), 0);
    t.primary(query(33000, 'who is example.org'), 0);
    const c = t.c.counters;
    assert.deepEqual([c.connectionsOpened, c.connectionsClosed, c.secondaryWaitingFrames], [2, 1, 0]);
    assert.deepEqual(t.releasedPayloads(), [], 'the SVM\'s copy left with its flow');
    assert.deepEqual(t.checkpoints(), ['table_full'], 'the SVM\'s output was dropped: only a checkpoint makes the guests comparable again');
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['who is example.org']);
  });

  test('pre-translated mode (QEMU\'s rewriter does not remap UDP) pairs nothing', () => {
    const t = new Twins();
    t.primary(query(33000, 'q'));
    t.secondary(query(44000, 'q'));
    assert.deepEqual(t.released(), []);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });
});

/** An echo request from the guest to SERVER (or, `reply`, the server's answer to the guest). */
function echo(id: number, sequence: number, f: Partial<IcmpEchoFields> = {}): Uint8Array {
  return f.reply
    ? emitIcmpEcho({ src: SERVER, dst: GUEST, id, sequence, payload: new Uint8Array(32).fill(sequence), ...f })
    : emitIcmpEcho({ src: GUEST, dst: SERVER, id, sequence, payload: new Uint8Array(32).fill(sequence), ...f });
}

describe('translate mode: a ping each guest runs, with its own echo identifier', () => {
  for (const svmFirst of [false, true]) {
    test(`requests paired, compared past the identifier; replies reach the SVM's identifier (${svmFirst ? 'SVM' : 'PVM'} first)`, () => {
      const t = new Twins({ mode: 'translate' });
      for (let seq = 1; seq <= 3; seq++) {
        if (svmFirst) t.secondary(echo(2222, seq));
        t.primary(echo(1111, seq));
        if (!svmFirst) t.secondary(echo(2222, seq));
        const reply = echo(1111, seq, { reply: true });
        t.client(reply);
        assert.deepEqual(t.delivered('primary').at(-1), reply);
        const toSvm = decodeFrame(t.delivered('secondary').at(-1)!);
        assert.ok(toSvm instanceof Frame && toSvm.transport instanceof IcmpView);
        assert.deepEqual([toSvm.transport.echoId, toSvm.transport.echoSequence], [2222, seq]);
        assert.ok(toSvm.transport.verifyChecksum());
      }
      assert.equal(t.released().length, 3);
      assert.deepEqual(t.checkpoints(), []);
    });
  }

  test('identifiers crossed: the SVM\'s second ping, with the identifier of the PVM\'s first, is paired with the PVM\'s second', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.primary(echo(1111, 1), 0);
    t.secondary(echo(2222, 1), 0);
    t.primary(echo(3333, 1), 10);
    t.secondary(echo(1111, 1), 10);
    t.primary(echo(1111, 2), 20);
    t.secondary(echo(2222, 2), 20);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.released().length, 3);
    t.client(echo(3333, 1, { reply: true }), 10_000);
    const toSvm = decodeFrame(t.delivered('secondary').at(-1)!);
    assert.ok(toSvm instanceof Frame && toSvm.transport instanceof IcmpView);
    assert.equal(toSvm.transport.echoId, 1111, 'the second ping\'s reply reaches the SVM\'s ping');
  });

  test('ICMPv6 too, checksum valid over the pseudo-header', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(echo(1111, 1, { src: 'fd00::2', dst: 'fd00::53' }));
    t.secondary(echo(2222, 1, { src: 'fd00::2', dst: 'fd00::53' }));
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.released().length, 1);
    t.client(echo(1111, 1, { reply: true, src: 'fd00::53', dst: 'fd00::2' }));
    const f = decodeFrame(t.delivered('secondary')[0]!);
    assert.ok(f instanceof Frame && f.transport instanceof Icmpv6View);
    assert.equal(f.transport.echoId, 2222);
    assert.ok(f.transport.verifyChecksum(pseudoSumV6(f.bytes, 14, 58, f.transport.length)));
  });

  test('a paired ping whose sequence or data differ is still an icmp.payload mismatch', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(echo(1111, 1));
    t.secondary(echo(2222, 1));
    t.primary(echo(1111, 2));
    t.secondary(echo(2222, 3));
    assert.deepEqual(t.checkpoints(), ['icmp.payload']);
    assert.equal(t.released().length, 1);
  });

  test('the client\'s own ping (both guests answer with its identifier) needs nothing', () => {
    const t = new Twins({ mode: 'translate' });
    const request = echo(4242, 1, { src: SERVER, dst: GUEST });
    t.client(request);
    assert.deepEqual(t.delivered('secondary'), [request]);
    t.primary(echo(4242, 1, { reply: true, src: GUEST, dst: SERVER }));
    t.secondary(echo(4242, 1, { reply: true, src: GUEST, dst: SERVER }));
    assert.equal(t.released().length, 1);
    assert.deepEqual(t.checkpoints(), []);
  });
});

// Property: however the two guests' output interleaves, flows they open from different ports
// (identifiers) are compared as one: no mismatch, and every PVM frame released once, in its flow's
// order. Both guests run the same program, so they open the flows to one destination in the same
// order; which guest is ahead, and by how much, is random.
describe('translate mode: guest-opened datagram flows, any interleaving of the two guests', () => {
  interface FlowSpec {
    kind: 'udp' | 'echo';
    /** Index into SERVERS. */
    server: number;
    pvmPort: number;
    svmPort: number;
    messages: number;
  }
  const SERVERS = ['192.0.2.53', '192.0.2.54'];

  function frameOf(f: FlowSpec, svm: boolean, n: number, flow: number): Uint8Array {
    const port = svm ? f.svmPort : f.pvmPort;
    const dst = SERVERS[f.server]!;
    const payload = `flow ${flow} message ${n}`;
    return f.kind === 'udp'
      ? emitUdp({ src: GUEST, dst, srcPort: port, dstPort: 53, payload })
      : emitIcmpEcho({ src: GUEST, dst, id: port, sequence: n, payload: new TextEncoder().encode(payload) });
  }

  const flowArb = fc.record({
    kind: fc.constantFrom<'udp' | 'echo'>('udp', 'echo'),
    server: fc.integer({ min: 0, max: SERVERS.length - 1 }),
    messages: fc.integer({ min: 1, max: 4 }),
  });

  test('zero mismatches; each PVM frame released once, in order within its flow', () => {
    fc.assert(
      fc.property(fc.array(flowArb, { minLength: 1, maxLength: 6 }), fc.array(fc.boolean(), { maxLength: 80 }), (shapes, coin) => {
        // Distinct ports per side (as random ephemeral ports would be), never equal across sides.
        const flows: FlowSpec[] = shapes.map((s, i) => ({ ...s, pvmPort: 30000 + i, svmPort: 40000 + 7 * i }));
        // One program order of all messages (flow by flow, round robin), the same for both guests.
        const order: [number, number][] = [];
        for (let n = 0; n < 4; n++) flows.forEach((f, i) => n < f.messages && order.push([i, n]));
        const t = new Twins({ mode: 'translate' });
        let p = 0;
        let s = 0;
        let k = 0;
        while (p < order.length || s < order.length) {
          const primaryNext = s === order.length || (p < order.length && (coin[k++ % Math.max(1, coin.length)] ?? true));
          const [flow, n] = order[primaryNext ? p++ : s++]!;
          if (primaryNext) t.primary(frameOf(flows[flow]!, false, n, flow));
          else t.secondary(frameOf(flows[flow]!, true, n, flow));
        }
        assert.deepEqual(t.mismatchReasons(), []);
        const { connectionsOpened, connectionsClosed } = t.c.counters;
        assert.equal(connectionsOpened - connectionsClosed, flows.length, 'one connection per flow: those the SVM opened first were merged (and counted closed)');
        const released = t.released().map(payloadOrEcho);
        assert.equal(released.length, order.length, 'every PVM frame released, once');
        flows.forEach((_, i) => {
          const mine = released.filter((r) => r.startsWith(`flow ${i} `));
          assert.deepEqual(mine, mine.map((_, n) => `flow ${i} message ${n}`), `flow ${i} in order`);
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('translate mode: flows over quiet spells, with ports drawn again (any interleaving of the two guests)', () => {
  const SERVERS = ['192.0.2.53', '192.0.2.54'];
  /** A flow of the script: its kind, server and each guest's port (identifier). */
  interface Flow {
    kind: 'udp' | 'echo';
    server: number;
    pvmPort: number;
    svmPort: number;
    sent: number;
  }
  /**
   * One step of a round: a flow goes on, or a new one opens, each guest's port fresh, drawn again
   * (its own of an earlier flow), or crossed (the other guest's of an earlier flow).
   */
  const stepArb = fc.record({
    goOn: fc.nat(),
    kind: fc.constantFrom<'udp' | 'echo'>('udp', 'echo'),
    server: fc.integer({ min: 0, max: SERVERS.length - 1 }),
    pvmReuse: fc.option(fc.nat(), { nil: undefined }),
    svmReuse: fc.option(fc.nat(), { nil: undefined }),
    pvmCross: fc.option(fc.nat(), { nil: undefined }),
    svmCross: fc.option(fc.nat(), { nil: undefined }),
    messages: fc.integer({ min: 1, max: 2 }),
  });
  /** Quiet spells between rounds: long, or just past the 2 s after which a flow may be a new one. */
  const gapArb = fc.constantFrom(10_000, 2_100);

  test('zero mismatches and nothing left waiting; each PVM frame released once, in order within its flow; answers reach the SVM\'s port', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(stepArb, { minLength: 1, maxLength: 4 }), gapArb), { minLength: 1, maxLength: 4 }), fc.array(fc.boolean(), { maxLength: 60 }), (rounds, coin) => {
        const flows: Flow[] = [];
        /** Flows no guest has closed (by drawing one of its ports again). */
        const alive = new Set<number>();
        let fresh = 0;
        const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000 });
        const frameOf = (i: number, svm: boolean, n: number): Uint8Array => {
          const f = flows[i]!;
          const port = svm ? f.svmPort : f.pvmPort;
          const payload = `flow ${i} message ${n}`;
          return f.kind === 'udp'
            ? emitUdp({ src: GUEST, dst: SERVERS[f.server]!, srcPort: port, dstPort: 53, payload })
            : emitIcmpEcho({ src: GUEST, dst: SERVERS[f.server]!, id: port, sequence: n, payload: new TextEncoder().encode(payload) });
        };
        let k = 0;
        let start = 0;
        for (const [steps, gap] of rounds) {
          // Each guest's program in this round, the same for both: flows touched once each.
          const order: [number, number][] = [];
          const touched = new Set<number>();
          for (const step of steps) {
            const candidates = [...alive].filter((i) => !touched.has(i));
            let i: number;
            const drawn = step.pvmReuse !== undefined || step.svmReuse !== undefined || step.pvmCross !== undefined || step.svmCross !== undefined;
            if (!drawn && candidates.length > 0 && step.goOn % 2 === 0) {
              i = candidates[step.goOn % candidates.length]!;
            } else {
              // A new flow: a guest drawing a port takes one of an earlier flow of that kind to
              // that server, its own or the other guest's, but none a flow touched this round uses
              // on either guest (no two new flows of a round cross each other).
              const inUse = (port: number): boolean => [...touched].some((j) => (flows[j]!.pvmPort === port || flows[j]!.svmPort === port) && flows[j]!.kind === step.kind && flows[j]!.server === step.server);
              const drawFrom = (choice: number | undefined, side: 'pvmPort' | 'svmPort'): number | undefined => {
                const pool = flows.filter((f) => f.kind === step.kind && f.server === step.server && !inUse(f[side])).map((f) => f[side]);
                return choice === undefined || pool.length === 0 ? undefined : pool[choice % pool.length];
              };
              fresh++;
              const pvmPort = drawFrom(step.pvmReuse, 'pvmPort') ?? drawFrom(step.pvmCross, 'svmPort') ?? 30000 + fresh;
              const svmPort = drawFrom(step.svmReuse, 'svmPort') ?? drawFrom(step.svmCross, 'pvmPort') ?? 40000 + fresh;
              i = flows.push({ kind: step.kind, server: step.server, pvmPort, svmPort, sent: 0 }) - 1;
              // The flows whose ports were drawn again are over, for both guests.
              flows.forEach((f, j) => {
                if (j !== i && f.kind === step.kind && f.server === step.server && (f.pvmPort === flows[i]!.pvmPort || f.svmPort === flows[i]!.svmPort)) alive.delete(j);
              });
              alive.add(i);
            }
            touched.add(i);
            for (let m = 0; m < step.messages; m++) order.push([i, flows[i]!.sent++]);
          }
          // Rounds are quiet spells apart; within one, the two guests interleave at random.
          let p = 0;
          let s = 0;
          let at = (start += gap);
          while (p < order.length || s < order.length) {
            const primaryNext = s === order.length || (p < order.length && (coin[k++ % Math.max(1, coin.length)] ?? true));
            const [flow, n] = order[primaryNext ? p++ : s++]!;
            if (primaryNext) t.primary(frameOf(flow, false, n), at++);
            else t.secondary(frameOf(flow, true, n), at++);
          }
          // The servers answer each flow of the round: the SVM must get it on its own port.
          for (const i of touched) {
            const f = flows[i]!;
            t.client(f.kind === 'udp'
              ? emitUdp({ src: SERVERS[f.server]!, dst: GUEST, srcPort: 53, dstPort: f.pvmPort, payload: `answer ${i}` })
              : emitIcmpEcho({ src: SERVERS[f.server]!, dst: GUEST, id: f.pvmPort, sequence: 0, reply: true }), at++);
            const toSvm = decodeFrame(t.delivered('secondary').at(-1)!);
            assert.ok(toSvm instanceof Frame);
            const port = toSvm.transport instanceof UdpView ? toSvm.transport.dstPort : toSvm.transport instanceof IcmpView ? toSvm.transport.echoId : -1;
            assert.equal(port, f.svmPort, `flow ${i}'s answer at the SVM's port`);
          }
        }
        t.advanceTo(start + 10_000);
        assert.deepEqual(t.mismatchReasons(), []);
        assert.deepEqual(t.checkpoints(), []);
        const released = t.released().map(payloadOrEcho);
        assert.equal(released.length, flows.reduce((n, f) => n + f.sent, 0), 'every PVM frame released, once');
        flows.forEach((f, i) => {
          const mine = released.filter((x) => x.startsWith(`flow ${i} `));
          assert.deepEqual(mine, Array.from({ length: f.sent }, (_, n) => `flow ${i} message ${n}`), `flow ${i} in order`);
        });
      }),
      { numRuns: 300 },
    );
  });
});

/** The payload of a UDP or echo frame as text. */
function payloadOrEcho(bytes: Uint8Array): string {
  const f = decodeFrame(bytes);
  assert.ok(f instanceof Frame);
  return new TextDecoder().decode(f.bytes.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength));
}

describe('translate mode: guest-side UDP servers (the client spoke first)', () => {
  test('answers from two services the guests send in different orders are not paired across ports', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const ask = (port: number, text: string) => emitUdp({ src: SERVER, dst: GUEST, srcPort: 5000, dstPort: port, payload: text });
    const reply = (port: number, text: string) => emitUdp({ src: GUEST, dst: SERVER, srcPort: port, dstPort: 5000, payload: text });
    t.client(ask(53, 'dns?'));
    t.client(ask(123, 'ntp?'));
    t.secondary(reply(53, 'dns!'));
    t.primary(reply(123, 'ntp!'));
    t.primary(reply(53, 'dns!'));
    t.secondary(reply(123, 'ntp!'));
    assert.deepEqual(t.releasedPayloads(), ['dns!', 'ntp!'], 'each once its twin came (flows release independently)');
    t.client(ask(123, 'ntp again?'));
    assert.equal(udpOf(t.delivered('secondary').at(-1)!).udp.dstPort, 123, 'the client\'s next query reaches the SVM\'s own service');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
  });
});
