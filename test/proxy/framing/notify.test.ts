import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../compare/index.js';
import {
  COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, DO_CHECKPOINT, encodeNotify, NOTIFY_MAX_LEN, NotifyDecoder, NotifyError,
} from '../../../proxy/framing/notify.js';
import type { NotifyMessage } from '../../../proxy/framing/notify.js';
import { concat, split } from './support.js';

const ascii = (s: string): string => toHex(Uint8Array.from(s, (c) => c.charCodeAt(0)));
const oneByteChunks = (input: Uint8Array): Uint8Array[] => split(input, Array.from({ length: input.length }, (_, i) => i + 1));

/** Pushes each chunk then ends; returns every message. */
function decode(chunks: Uint8Array[]): NotifyMessage[] {
  const d = new NotifyDecoder();
  const out: NotifyMessage[] = [];
  for (const c of chunks) out.push(...d.push(c));
  d.end();
  return out;
}

test('notify: the four messages are the exact strings, with lengths 25, 25, 13, 15', () => {
  assert.equal(COLO_USERSPACE_PROXY_INIT, 'COLO_USERSPACE_PROXY_INIT');
  assert.equal(COLO_COMPARE_GET_XEN_INIT, 'COLO_COMPARE_GET_XEN_INIT');
  assert.equal(DO_CHECKPOINT, 'DO_CHECKPOINT');
  assert.equal(COLO_CHECKPOINT, 'COLO_CHECKPOINT');
  assert.deepEqual([COLO_USERSPACE_PROXY_INIT, COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT, COLO_CHECKPOINT].map((m) => m.length), [25, 25, 13, 15]);
});

test('notify: encodings are the length then the ASCII body, no NUL, one buffer each', () => {
  assert.equal(toHex(encodeNotify(COLO_COMPARE_GET_XEN_INIT)), '00000019' + '434f4c4f5f434f4d504152455f4745545f58454e5f494e4954');
  assert.equal(toHex(encodeNotify(DO_CHECKPOINT)), '0000000d' + '444f5f434845434b504f494e54');
  assert.equal(toHex(encodeNotify(COLO_USERSPACE_PROXY_INIT)), '00000019' + ascii('COLO_USERSPACE_PROXY_INIT'));
  assert.equal(toHex(encodeNotify(COLO_CHECKPOINT)), '0000000f' + ascii('COLO_CHECKPOINT'));
  for (const m of [COLO_USERSPACE_PROXY_INIT, COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT, COLO_CHECKPOINT]) {
    const wire = encodeNotify(m);
    assert.equal(wire.length, 4 + m.length);
    assert.ok(!wire.subarray(4).includes(0), `${m} has no NUL`);
  }
});

test('notify: encodeNotify refuses what the controller could not read', () => {
  assert.throws(() => encodeNotify('A\0'), RangeError);
  assert.throws(() => encodeNotify('é'), RangeError);
  assert.throws(() => encodeNotify('x'.repeat(NOTIFY_MAX_LEN + 1)), RangeError);
  assert.equal(encodeNotify('x'.repeat(NOTIFY_MAX_LEN)).length, NOTIFY_MAX_LEN + 4);
});

// hello at 0 (29 bytes), checkpoint done at 29 (19 bytes), unknown DO_CHECKPOINT at 48 (17 bytes), empty at 65.
const stream = concat(encodeNotify(COLO_USERSPACE_PROXY_INIT), encodeNotify(COLO_CHECKPOINT), encodeNotify(DO_CHECKPOINT), fromHex('00000000'));
const messages: NotifyMessage[] = [
  { kind: 'hello', text: COLO_USERSPACE_PROXY_INIT, offset: 0 },
  { kind: 'checkpoint-done', text: COLO_CHECKPOINT, offset: 29 },
  { kind: 'unknown', text: DO_CHECKPOINT, offset: 48 },
  { kind: 'unknown', text: '', offset: 65 },
];

test('notify: every split point and 1-byte chunks give the same messages', () => {
  assert.deepEqual(decode([stream]), messages);
  for (let k = 0; k <= stream.length; k++) assert.deepEqual(decode(split(stream, [k])), messages, `split at ${k}`);
  assert.deepEqual(decode(oneByteChunks(stream)), messages);
});

test('notify: messages are matched exactly; near misses are unknown, not errors', () => {
  for (const text of ['COLO_CHECKPOINT ', 'colo_checkpoint', 'COLO_CHECKPOIN', ' COLO_USERSPACE_PROXY_INIT', 'COLO_COMPARE_GET_XEN_INIT']) {
    assert.deepEqual(decode([encodeNotify(text)]), [{ kind: 'unknown', text, offset: 0 }]);
  }
});

test('notify: every truncated prefix is reported by end() at the cut message', () => {
  const starts = messages.map((m) => m.offset);
  for (let p = 0; p <= stream.length; p++) {
    const d = new NotifyDecoder();
    const got = d.push(stream.subarray(0, p));
    if (p === stream.length || starts.includes(p)) {
      d.end();
      assert.deepEqual(got, messages.filter((m) => m.offset < p), `prefix ${p}`);
      continue;
    }
    const cut = Math.max(...starts.filter((s) => s < p));
    assert.throws(() => d.end(), (e: unknown) => e instanceof NotifyError && e.code === 'notify.truncated' && e.offset === cut, `prefix ${p}`);
  }
});

/** Asserts that `input`, whole and in 1-byte chunks, fails with `code` at `offset` after the same messages, and stays failed. */
function assertCorrupt(input: Uint8Array, code: string, offset: number): NotifyMessage[] {
  const delivered: NotifyMessage[][] = [];
  for (const chunks of [[input], oneByteChunks(input)]) {
    const d = new NotifyDecoder();
    const out: NotifyMessage[] = [];
    let thrown: unknown;
    try {
      for (const c of chunks) out.push(...d.push(c));
      d.end();
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof NotifyError, String(thrown));
    assert.equal(thrown.code, code, thrown.message);
    assert.equal(thrown.offset, offset, thrown.message);
    assert.match(thrown.message, new RegExp(`at byte ${offset} \\(${code.replace('.', '\\.')}\\)$`));
    assert.equal(d.error, thrown);
    assert.throws(() => d.push(new Uint8Array(1)), (e) => e === thrown);
    assert.throws(() => d.end(), (e) => e === thrown);
    delivered.push(out);
  }
  assert.deepEqual(delivered[0], delivered[1]);
  return delivered[0]!;
}

test('notify: an over-long length is a NotifyError at its length field', () => {
  const hello = encodeNotify(COLO_USERSPACE_PROXY_INIT);
  assert.deepEqual(assertCorrupt(concat(hello, fromHex('00000101'), new Uint8Array(257).fill(0x41)), 'notify.too_long', 29), [{ kind: 'hello', text: COLO_USERSPACE_PROXY_INIT, offset: 0 }]);
  assertCorrupt(fromHex('ffffffff'), 'notify.too_long', 0);
  assert.deepEqual(decode([concat(fromHex('00000100'), new Uint8Array(256).fill(0x41))]).map((m) => m.text.length), [256]);
});

test('notify: a message with a NUL or a byte over 0x7f is an unknown message, as QEMU takes it, and the stream goes on', () => {
  // COLO_CHECKPOINT followed by the C string terminator, as a careless controller might send it.
  const withNul = concat(fromHex('00000010'), Uint8Array.from('COLO_CHECKPOINT\0', (c) => c.charCodeAt(0)));
  const got = decode([concat(withNul, fromHex('00000003 41c342'), encodeNotify(COLO_CHECKPOINT))]);
  assert.deepEqual(got.map((m) => [m.kind, m.text]), [['unknown', 'COLO_CHECKPOINT\0'], ['unknown', 'A\u00c3B'], ['checkpoint-done', COLO_CHECKPOINT]]);
});

test('notify: `error` is set by the push that delivered the messages before the damage', () => {
  const framing = new NotifyDecoder();
  assert.equal(framing.push(concat(encodeNotify(COLO_CHECKPOINT), fromHex('00000101'))).length, 1);
  assert.ok(framing.error instanceof NotifyError && framing.error.code === 'notify.too_long' && framing.error.offset === 19);
  assert.throws(() => framing.push(new Uint8Array(0)), (e) => e === framing.error);
});

test('notify: push after end is incorrect use', () => {
  const d = new NotifyDecoder();
  d.end();
  assert.throws(() => d.push(new Uint8Array(1)), (e: unknown) => e instanceof Error && !(e instanceof NotifyError));
});

/** Sorted cut points within `[0, length]`, from arbitrary naturals. */
function cutsWithin(raw: number[], length: number): number[] {
  return [...new Set(raw.map((c) => c % (length + 1)))].sort((a, b) => a - b);
}

test('notify: random ASCII messages round-trip at random chunkings', () => {
  const text = fc.oneof(
    fc.constantFrom(COLO_USERSPACE_PROXY_INIT, COLO_CHECKPOINT, DO_CHECKPOINT),
    fc.string({ unit: fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: NOTIFY_MAX_LEN }),
  );
  fc.assert(fc.property(fc.array(text, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (texts, rawCuts) => {
    const input = concat(...texts.map(encodeNotify));
    const got = decode(split(input, cutsWithin(rawCuts, input.length)));
    assert.deepEqual(got.map((m) => m.text), texts);
    assert.deepEqual(got.map((m) => m.kind), texts.map((t) => (t === COLO_USERSPACE_PROXY_INIT ? 'hello' : t === COLO_CHECKPOINT ? 'checkpoint-done' : 'unknown')));
  }), { numRuns: 500 });
});

test('notify fuzz: random bytes yield messages or a NotifyError, nothing else', () => {
  const smallLen = fc.nat({ max: 300 }).map((n) => fromHex(n.toString(16).padStart(8, '0')));
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), smallLen, fc.constantFrom(...[COLO_CHECKPOINT, DO_CHECKPOINT].map(encodeNotify))), { maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 6 }),
    (pieces, rawCuts) => {
      const input = concat(...pieces);
      try {
        for (const m of decode(split(input, cutsWithin(rawCuts, input.length)))) {
          assert.ok(m.offset >= 0 && m.offset + 4 + m.text.length <= input.length);
        }
      } catch (e) {
        if (!(e instanceof NotifyError)) throw new Error(`not a NotifyError: ${String(e)}`, { cause: e });
        assert.match(e.code, /^notify\.(too_long|not_ascii|nul|truncated)$/);
        assert.ok(Number.isInteger(e.offset) && e.offset >= 0 && e.offset < input.length, e.message);
      }
    },
  ), { numRuns: 3000 });
});
