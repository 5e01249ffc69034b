/**
 * QEMU's own colo-compare as a reference peer for tests: a `qemu-system-x86_64` with no machine,
 * no devices and no guest, holding one `colo-compare` object wired to four UNIX-socket chardevs
 * that QEMU serves and the test connects to. The test plays PVM output into `primary_in`, SVM
 * output into `secondary_in`, reads `outdev` and acts as the Xen checkpoint controller on
 * `notify_dev` (COLO-REFERENCE §2-§4). The command line (see `qemuColoCompareArgs`):
 *
 *   qemu-system-x86_64 -machine none -nodefaults -display none -S
 *     -object iothread,id=iothread0
 *     -chardev socket,id=primary_in,path=DIR/primary_in,server=on,wait=off   (same for
 *        secondary_in, outdev, notify_dev)
 *     -object colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,
 *        outdev=outdev,iothread=iothread0,notify_dev=notify_dev[,vnet_hdr_support=on]
 *        [,compare_timeout=MS][,expired_scan_cycle=MS][,max_queue_size=N]
 *
 * The connection, the handshake, the `sync` barrier and the waits are those of every comparator
 * under test (comparator-under-test.ts). The barrier holds here because QEMU reads each input in
 * stream order in one iothread and writes `outdev` in order; it also proves that QEMU has accepted
 * `outdev` (QEMU drops what it releases to an outdev socket it has not accepted yet), so the
 * start-up barrier is retried until one comes through.
 *
 * Facts this harness relies on, observed with QEMU 7.2 (Debian 1:7.2+dfsg-7):
 * - With `vnet_hdr_support=on` QEMU's notify_dev *reader* also expects a `VNET_LEN` field (it
 *   shares the input framing code), although what QEMU *writes* there never has one and no Xen
 *   controller sends one. The harness therefore frames controller messages with `VNET_LEN` 0
 *   when vnet is on (`notifyVnetLen` overrides this, to demonstrate the desync).
 * - A frame QEMU releases before it has accepted `outdev` is lost ("colo send primary packet
 *   failed" on stderr), hence the start-up barrier retries.
 * - `-S` makes no difference with `-machine none` (there is no vCPU; colo-compare runs in its
 *   iothread either way); `iothread` is mandatory ("Parameter 'iothread' is missing").
 * - `compare_timeout=0` makes QEMU 7.2 abort (SIGABRT, qemu_mutex_destroy assertion) at start-up;
 *   `start` then fails with QEMU's stderr.
 * - QEMU removes its socket files when it exits; the harness removes the directory anyway.
 *
 * If `qemu-system-x86_64` is not installed, `startQemuColoCompare` throws an Error naming the
 * apt-get line: a test using this harness fails, it never skips.
 */

import { encodeQemuFrame } from '../../proxy/framing/qemu-frames.js';
import { QEMU_BINARY, QEMU_INSTALL_LINE, qemuColoCompareArgs } from '../../proxy/replay/qemu-colo-compare.js';
import { ChildUnderTest, connectComparator, findOnPath, makeTempDir, type ComparatorUnderTest } from './comparator-under-test.js';

export type { ReleasedFrame } from './comparator-under-test.js';

export { QEMU_BINARY, QEMU_PACKAGE, QEMU_INSTALL_LINE, qemuColoCompareArgs } from '../../proxy/replay/qemu-colo-compare.js';

/** Options of `startQemuColoCompare`; absent ones are left to QEMU's defaults (COLO-REFERENCE §3). */
export interface QemuColoCompareOptions {
  /** `vnet_hdr_support=on`: every frame on primary_in, secondary_in and outdev carries `VNET_LEN`. */
  vnetHeader?: boolean;
  /** `compare_timeout` in ms (QEMU's default 3000). */
  compareTimeoutMs?: number;
  /** `expired_scan_cycle` in ms (QEMU's default 1000). */
  scanIntervalMs?: number;
  /** `max_queue_size` (QEMU's default 1024). */
  maxQueueSize?: number;
  /** Whether controller messages carry a `VNET_LEN` 0 field; default: as `vnetHeader` (what QEMU's reader expects). */
  notifyVnetLen?: boolean;
  /** Skip the start-up notify handshake (default false). */
  skipHello?: boolean;
  /** Bound on the whole start-up, ms (default 5000). */
  startTimeoutMs?: number;
}

export interface QemuColoCompare extends ComparatorUnderTest {
  /** Waits until QEMU's stderr matches `pattern`. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a controller message, framed as QEMU's notify reader expects (see `notifyVnetLen`). */
  sendNotify(text: string): Promise<void>;
  /** Writes raw bytes to notify_dev (for framing experiments). */
  sendNotifyBytes(bytes: Uint8Array): Promise<void>;
}

/** The path of `qemu-system-x86_64`; throws, naming the apt-get line, if it is not installed (`tests` says who needs it). */
export function requireQemu(tests: string): string {
  const binary = findOnPath(QEMU_BINARY);
  if (binary === undefined) {
    throw new Error(`${QEMU_BINARY} is not installed, and the ${tests} need it. ` +
      `Install it with: apt-get update && ${QEMU_INSTALL_LINE} (or run \`npm run setup\` as root, which does exactly that)`);
  }
  return binary;
}

/** Runs `fn` with PATH pointing nowhere, as on a host without QEMU; restores PATH after. */
export async function withoutQemu(fn: () => Promise<void>): Promise<void> {
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    await fn();
  } finally {
    process.env['PATH'] = path;
  }
}

/** Starts QEMU's colo-compare and connects to it; see the module header. */
export async function startQemuColoCompare(options: QemuColoCompareOptions = {}): Promise<QemuColoCompare> {
  const binary = requireQemu('QEMU reference tests');
  const dir = makeTempDir('colo-qemu-');
  const child = new ChildUnderTest('QEMU', dir, binary, qemuColoCompareArgs(dir, options));
  const vnetHeader = options.vnetHeader === true;
  const notifyVnetLen = options.notifyVnetLen ?? vnetHeader;
  return connectComparator(child, {
    vnetHeader,
    // QEMU's messages never carry VNET_LEN, vnet or not; what its reader wants: see the header.
    notifyFrame: (text) => encodeQemuFrame(new TextEncoder().encode(text), notifyVnetLen ? new Uint8Array(0) : undefined),
    retryStartBarrier: true,
    skipHello: options.skipHello,
    startTimeoutMs: options.startTimeoutMs ?? 5000,
  });
}
