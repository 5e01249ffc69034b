/**
 * The Xen checkpoint-controller protocol of colo-compare's `notify_dev` (COLO-REFERENCE §4): the
 * QEMU socket framing of qemu-frames.ts, never with a `VNET_LEN`, each frame one ASCII message
 * without NUL (what we send). (QEMU's own reader takes a `VNET_LEN` here when `vnet_hdr_support` is on, which
 * no controller sends; we follow the controller.)
 *
 * `NotifyDecoder` has the contract of unit-framer.ts, like `QemuFrameDecoder`: any chunking,
 * messages in stream order, messages before the damage all delivered with `error` set and the
 * error thrown by the next call, then dead; `end()` reports a stream that stopped inside a
 * message. A message is matched exactly (as QEMU does): anything but the two controller messages
 * is returned as kind `unknown`, for the caller to log and count, not thrown; so is one with a NUL
 * or a byte over 0x7f (`COLO_CHECKPOINT` with a C string's terminator, say), which QEMU also
 * logs and ignores: closing the connection for it cut off a controller that might not come back.
 * Framing errors are a `NotifyError`: a length over `NOTIFY_MAX_LEN`, a truncated stream.
 *
 * `encodeNotify` returns one buffer (length and body) so that each message goes out in a single
 * write: the Xen controller reads the length and the body with one recv each. Text it cannot
 * encode (over `NOTIFY_MAX_LEN` bytes, non-ASCII, a NUL) is a programmer error: RangeError.
 */

import { readU32, writeU32 } from '../../compare/index.js';
import { FramingError, UnitFramer } from './unit-framer.js';
import type { UnitFormat } from './unit-framer.js';

/** Controller -> comparator, once after connecting: hello. */
export const COLO_USERSPACE_PROXY_INIT = 'COLO_USERSPACE_PROXY_INIT';
/** Comparator -> controller: the reply to the hello (the controller waits 500 ms for it). */
export const COLO_COMPARE_GET_XEN_INIT = 'COLO_COMPARE_GET_XEN_INIT';
/** Comparator -> controller: please checkpoint now. */
export const DO_CHECKPOINT = 'DO_CHECKPOINT';
/** Controller -> comparator: checkpoint done, flush the queues. */
export const COLO_CHECKPOINT = 'COLO_CHECKPOINT';

/** Longest accepted message body; the protocol's longest is 25 bytes. */
export const NOTIFY_MAX_LEN = 256;

/** One message from the controller. */
export interface NotifyMessage {
  /** `hello` for COLO_USERSPACE_PROXY_INIT, `checkpoint-done` for COLO_CHECKPOINT, else `unknown`. */
  kind: 'hello' | 'checkpoint-done' | 'unknown';
  /** The message body. */
  text: string;
  /** Stream offset of the message's length field. */
  offset: number;
}

/** Stable codes of `NotifyError`. */
export type NotifyErrorCode = 'notify.too_long' | 'notify.truncated';

/** A notify stream that cannot be decoded further. `offset` is the stream offset of the message's length field. */
export class NotifyError extends FramingError<NotifyErrorCode> {
  override readonly name = 'NotifyError';
}

/** Notify messages as units: the length field is the prefix, `unit` sees the message. */
const notifyUnits: UnitFormat<NotifyMessage, NotifyError> = {
  prefixLength: 4,

  unitLength(b: Uint8Array, at: number, have: number, offset: number): number {
    if (have < 4) return 0;
    const len = readU32(b, at);
    if (len > NOTIFY_MAX_LEN) throw new NotifyError('notify.too_long', offset, `message length ${len} exceeds the limit ${NOTIFY_MAX_LEN}`);
    return 4 + len;
  },

  unit(b: Uint8Array, at: number, length: number, offset: number, out: NotifyMessage[]): void {
    let text = '';
    for (let i = 0; i < length; i++) text += String.fromCharCode(b[at + i]!);
    const kind = text === COLO_USERSPACE_PROXY_INIT ? 'hello' : text === COLO_CHECKPOINT ? 'checkpoint-done' : 'unknown';
    out.push({ kind, text, offset });
  },

  truncated(offset: number, have: number, length: number): NotifyError | undefined {
    if (have === 0) return undefined;
    const problem = length === 0
      ? `stream ends after ${have} of the 4 bytes of a message's length fields`
      : `stream ends after ${have - 4} of the ${length - 4} bytes of a message`;
    return new NotifyError('notify.truncated', offset, problem);
  },
};

/** Incremental decoder of the controller -> comparator stream. Call order: `push`* then `end` once. */
export class NotifyDecoder extends UnitFramer<NotifyMessage, NotifyError> {
  constructor() {
    super(notifyUnits, 'NotifyDecoder');
  }
}

/** `text` framed for the controller, as one buffer to send in one write. */
export function encodeNotify(text: string): Uint8Array {
  if (text.length > NOTIFY_MAX_LEN) throw new RangeError(`encodeNotify: message of ${text.length} characters exceeds ${NOTIFY_MAX_LEN}`);
  const out = new Uint8Array(4 + text.length);
  writeU32(out, 0, text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0 || c > 0x7f) throw new RangeError(`encodeNotify: character ${c} at ${i} is not ASCII without NUL`);
    out[4 + i] = c;
  }
  return out;
}
