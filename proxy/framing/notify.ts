/**
 * The Xen checkpoint-controller protocol of colo-compare's `notify_dev` (COLO-REFERENCE §4): the
 * QEMU socket framing of qemu-frames.ts, never with a `VNET_LEN`, each frame one ASCII message
 * without NUL. (QEMU's own reader takes a `VNET_LEN` here when `vnet_hdr_support` is on, which
 * no controller sends; we follow the controller.)
 *
 * `NotifyDecoder` has the contract of `QemuFrameDecoder`: any chunking, messages in stream order,
 * messages before the damage all delivered with `error` set and the error thrown by the next call,
 * then dead; `end()` reports a stream that stopped inside a message. A message is matched exactly
 * (as QEMU does): anything but the two controller messages is returned as kind `unknown`, for the
 * caller to log and count, not thrown. Framing errors are a `NotifyError`: a length over
 * `NOTIFY_MAX_LEN`, a byte over 0x7f, a NUL, a truncated stream.
 *
 * `encodeNotify` returns one buffer (length and body) so that each message goes out in a single
 * write: the Xen controller reads the length and the body with one recv each. Text it cannot
 * encode (over `NOTIFY_MAX_LEN` bytes, non-ASCII, a NUL) is a programmer error: RangeError.
 */

import { QemuFrameDecoder, QemuFramingError } from './qemu-frames.js';
import { writeU32 } from '../../compare/index.js';

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
export type NotifyErrorCode = 'notify.too_long' | 'notify.not_ascii' | 'notify.nul' | 'notify.truncated';

/**
 * A notify stream that cannot be decoded further. `offset` is the stream offset of the length
 * field (`notify.too_long`, `notify.truncated`) or of the offending byte (`notify.not_ascii`,
 * `notify.nul`).
 */
export class NotifyError extends Error {
  override readonly name = 'NotifyError';

  constructor(
    /** Stable dotted code. */
    readonly code: NotifyErrorCode,
    /** Stream offset of the faulty field or byte. */
    readonly offset: number,
    /** One-line description of the problem, without the offset. */
    readonly problem: string,
  ) {
    super(`${problem} at byte ${offset} (${code})`);
  }
}

/** The notify error for a framing error of the underlying decoder (which has no vnet, so only these two). */
function fromFraming(e: QemuFramingError): NotifyError {
  const code = e.code === 'qemu.frame_too_long' ? 'notify.too_long' : 'notify.truncated';
  return new NotifyError(code, e.offset, e.problem.replace('frame', 'message'));
}

/** The message in `body`, whose length field is at `offset`; throws NotifyError on a NUL or a non-ASCII byte. */
function message(body: Uint8Array, offset: number): NotifyMessage {
  let text = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === 0) throw new NotifyError('notify.nul', offset + 4 + i, 'NUL in a notify message');
    if (c > 0x7f) throw new NotifyError('notify.not_ascii', offset + 4 + i, `non-ASCII byte 0x${c.toString(16)} in a notify message`);
    text += String.fromCharCode(c);
  }
  const kind = text === COLO_USERSPACE_PROXY_INIT ? 'hello' : text === COLO_CHECKPOINT ? 'checkpoint-done' : 'unknown';
  return { kind, text, offset };
}

/** Incremental decoder of the controller -> comparator stream. Call order: `push`* then `end` once. */
export class NotifyDecoder {
  private readonly frames = new QemuFrameDecoder({ vnetHeader: false, maxFrame: NOTIFY_MAX_LEN });
  private failure: NotifyError | undefined = undefined;
  private ended = false;

  /** The error that killed the decoder, set as soon as it is found (possibly before `push` throws it). */
  get error(): NotifyError | undefined {
    return this.failure;
  }

  /** Decodes the next chunk; returns the messages it completed. Throws NotifyError (see the module header for when). */
  push(chunk: Uint8Array): NotifyMessage[] {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('NotifyDecoder: push() after end()');
    const out: NotifyMessage[] = [];
    try {
      for (const f of this.frames.push(chunk)) out.push(message(f.packet, f.offset));
      if (this.frames.error) throw this.frames.error;
    } catch (e) {
      if (e instanceof QemuFramingError) this.failure = fromFraming(e);
      else if (e instanceof NotifyError) this.failure = e;
      else throw e;
      if (out.length === 0) throw this.failure;
    }
    return out;
  }

  /** Declares the stream over; throws NotifyError('notify.truncated') if it stopped inside a message. */
  end(): void {
    if (this.failure) throw this.failure;
    this.ended = true;
    try {
      this.frames.end();
    } catch (e) {
      if (!(e instanceof QemuFramingError)) throw e;
      this.failure = fromFraming(e);
      throw this.failure;
    }
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
