/** Decoding a frame a test built, failing the test (with the decoder's reason) if it is not one. */
import assert from 'node:assert/strict';
import { LINKTYPE_ETHERNET } from '../../compare/wire/link.js';
import { Frame, decodeFrame } from '../../compare/wire/frame.js';

/** `bytes` decoded as a frame of `linkType`; fails the test when they are not one. */
export function decoded(bytes: Uint8Array, linkType = LINKTYPE_ETHERNET): Frame {
  const f = decodeFrame(bytes, linkType);
  assert.ok(f instanceof Frame, String(f));
  return f;
}
