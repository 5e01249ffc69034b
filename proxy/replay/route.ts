/**
 * Which side of the comparator each captured frame goes to. Frames of `--client` are client
 * input. In the guests' captures, frames the guest sent (guest.ts) are its output; the rest is
 * client input captured on the same interface — taken from the primary capture as the client's
 * side when no `--client` file is given, and otherwise skipped and counted, as is the
 * secondary's copy of the input. Shared by the in-process replay and `--against`.
 */

import type { Side } from '../../compare/index.js';
import type { CapturedFrame } from '../framing/capture.js';
import { sentByGuest } from './guest.js';
import { replayableLinkType, unreplayable, unsupportedLinkType } from './as-ethernet.js';

/** Captures that cannot be replayed: a frame of an unsupported link type or `unreplayable`, or no guest output in either. */
export class ReplayInputError extends Error {
  override name = 'ReplayInputError';
}

/** Frames of the captures that were not fed to the comparator as guest output, and why. */
export interface SkippedFrames {
  /** Client traffic found in the secondary capture (the SVM's copy of the input). */
  secondaryInput: number;
  /** Client traffic found in the primary capture while `--client` gave it separately. */
  primaryInput: number;
}

/** The captures to merge, in order, and the side each one plays. */
export function replayInputs(o: { primary: string; secondary: string; client?: string | undefined }): { paths: string[]; roles: Side[] } {
  const paths = [o.primary, o.secondary];
  const roles: Side[] = ['primary', 'secondary'];
  if (o.client !== undefined) {
    paths.push(o.client);
    roles.push('client');
  }
  return { paths, roles };
}

export class FrameRouter {
  readonly skipped: SkippedFrames = { secondaryInput: 0, primaryInput: 0 };
  private readonly clientGiven: boolean;

  constructor(private readonly paths: readonly string[], private readonly roles: readonly Side[], private readonly guestMac: Uint8Array | undefined) {
    this.clientGiven = roles.includes('client');
  }

  /**
   * The side `f` (from input `from`) goes to, or undefined when it is skipped; throws
   * ReplayInputError for a frame replay cannot take (its link type, or `unreplayable`).
   */
  route(f: CapturedFrame, from: number): Side | undefined {
    if (!replayableLinkType(f.linkType)) throw new ReplayInputError(`${this.paths[from]}: frame at byte ${f.fileOffset}: ${unsupportedLinkType(f.linkType)}`);
    const why = unreplayable(f.linkType, f.data.length);
    if (why !== undefined) throw new ReplayInputError(`${this.paths[from]}: frame at byte ${f.fileOffset}: ${why}`);
    const role = this.roles[from]!;
    if (role === 'client' || sentByGuest(f, this.guestMac)) return role;
    if (role === 'secondary' || this.clientGiven) {
      this.skipped[role === 'secondary' ? 'secondaryInput' : 'primaryInput']++;
      return undefined;
    }
    return 'client';
  }
}
