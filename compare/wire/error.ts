/**
 * The coded result of a packet that cannot be decoded.
 *
 * Packet bytes never throw. Every parser returns either its view or a `WireError` whose `code` is
 * a stable dotted event name (`decode.tcp.header_too_short`) that later becomes a metric label and
 * a log field, and whose `at` is the byte offset in the frame where decoding stopped. Test with
 * `isWireError`; the class is exported so `instanceof` works too.
 */

export class WireError {
  constructor(
    /** Stable dotted event code, `decode.<layer>.<problem>`. */
    readonly code: string,
    /** Byte offset within the frame where the problem was found. */
    readonly at: number,
  ) {}

  toString(): string {
    return `${this.code} at byte ${this.at}`;
  }
}

/** True when a parser's result is an error rather than a view. */
export function isWireError(x: unknown): x is WireError {
  return x instanceof WireError;
}
