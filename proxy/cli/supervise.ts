/**
 * The live commands (`run`, `bridge`) run their engine in a child process (the same command line)
 * and start it again when it dies. cap 0.2.1 asserts that libuv never reports a poll error, and a
 * packet socket reports one as soon as its interface goes down or away (a tap removed when QEMU
 * restarts), so the whole process aborts: the engine cannot survive that, this process can. Once
 * every interface is up again a new engine starts (for `run` with a fresh core: open connections
 * are picked up mid-stream; held frames and the capture rings' contents are lost, as on a wire,
 * and TCP retransmits). An interface the engine can do without (`run`'s --secondary-if: the SVM's
 * tap, gone when the SVM fails, which is what COLO is there to survive) is not waited for: while
 * it is down the engine starts without it (`engineWithout`), and when that engine asks for it
 * back (exit code EXIT_RESTART, `run` on SIGUSR2) one with every interface starts at once; so
 * does the first engine when that interface is missing or down at the start. A first start that
 * fails exits with the engine's code (its one-line error is already printed).
 * SIGINT and SIGTERM are passed on (SIGHUP as SIGTERM), or, between engines, end the wait for the
 * interfaces at once (it polls every 0.25 s, backing off to 5 s), and the command's own signals (`run`:
 * SIGUSR2) once the engine has said it started. An engine still running STOP_GRACE_MS after a
 * stop signal is killed, and this process then exits EXIT_ENGINE_KILLED. The engine gets this process's Node flags plus any
 * of NODE_FLAGS that are missing (node-flags.ts), however this process was started. The
 * interfaces' offload features are taken before the first engine that uses each and put back
 * after the last.
 * libpcap's complaint about an interface without an IPv4 address, which cap prints to stderr
 * for every such interface (a proxy's need none), is left out of the engine's stderr.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { EXIT_USAGE } from './errors.js';
import { interfaceState, offloadFeatures, restoreOffloads } from '../ports/pcap-interface.js';
import { missingNodeFlags } from './node-flags.js';

/** Set in the environment of the engine process that `supervise` starts: 'first', or 'restart' after one died. */
const ENGINE_ENV = 'COLO_PROXY_ENGINE';
/** Set to the interface an engine is started without (see the header). */
const WITHOUT_ENV = 'COLO_PROXY_ENGINE_WITHOUT';
/** An engine's exit code asking for a new engine at once, with every interface (EX_TEMPFAIL). */
export const EXIT_RESTART = 75;
/** This process's exit code when it had to kill an engine that would not stop (128 + SIGKILL's 9, as a shell reports a killed process). */
export const EXIT_ENGINE_KILLED = 137;
const RESTART_FIRST_MS = 250;
const RESTART_MAX_MS = 5000;
/**
 * How long an engine may take to stop after SIGINT or SIGTERM before it is killed: it stops in
 * well under a second, unless frames hold up its event loop, where the signal is never handled
 * (capture-stall.ts).
 */
const STOP_GRACE_MS = 5000;

/** Whether this process is the engine `supervise` started, and which start: undefined in the supervisor. */
export function engineStart(): 'first' | 'restart' | undefined {
  const v = process.env[ENGINE_ENV];
  return v === 'first' || v === 'restart' ? v : undefined;
}

/** The interface this engine was started without because it was down (see the header), or undefined. */
export function engineWithout(): string | undefined {
  const v = process.env[WITHOUT_ENV];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * For an engine: a check that ends this process at once when its supervisor (the parent at the
 * time of the call) is gone. Made for while frames hold up the event loop (capture-stall.ts): the
 * engine cannot stop gracefully then (that needs the loop), and nothing else would ever stop it.
 */
export function exitIfSupervisorGone(command: string, log: (line: string) => void): () => void {
  const supervisor = process.ppid;
  return () => {
    if (process.ppid === supervisor) return;
    log(`${command}: the supervisor is gone while frames hold up the event loop: exiting now; what it held is lost`);
    process.exit(1);
  };
}

/**
 * What stops an engine, listened for from before it starts (a supervisor gone meanwhile is not
 * missed): SIGINT, SIGTERM, SIGHUP (a terminal or ssh session closing signals the whole process
 * group, the engine too: it stops as on SIGTERM, where it would die of it), or its supervisor
 * gone (killed: nothing would stop or restart it then, and its sockets would keep a new one
 * from starting). The handlers stay while it stops: a Ctrl-C reaches it twice (from the terminal
 * and forwarded by the supervisor), and the second must not kill it mid-close. `stop` ends it for
 * a reason of the engine's own.
 */
export function engineStop(): { stopped: Promise<string>; stop: (why: string) => void } {
  let stop: (why: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve(signal));
    process.once('disconnect', () => resolve('the supervisor is gone'));
    if (!process.connected) resolve('the supervisor is gone');
  });
  return { stopped, stop };
}

/** The engine tells its supervisor it has started (signals may be passed on from now); a supervisor gone meanwhile is `engineStop`'s. */
export function engineStarted(): void {
  if (process.connected) process.send?.('started', undefined, undefined, () => {});
}

/** Told of each engine and of what the supervisor sees happen to it (run's metrics, engine-relay.ts). */
export interface EngineWatcher {
  attach(engine: ChildProcess): void;
  /** The engine exited. */
  detach(): void;
  /** An engine starts without the optional interface, which the one before had (or at the first start). */
  lost(): void;
  /** An engine handed over (EXIT_RESTART) to one with every interface. */
  handedOver(): void;
}

export interface Supervision {
  /** The command, for log lines ('run', 'bridge'). */
  command: string;
  interfaces: readonly [flag: string, name: string][];
  /** The one of `interfaces` an engine can start without, if any (see the header). */
  optional?: string;
  /** Signals passed on to a started engine besides SIGINT and SIGTERM, with what to say when none is running yet. */
  engineSignals: readonly { signal: NodeJS.Signals; notYet: string }[];
  log(line: string): void;
  watcher?: EngineWatcher;
  /** The first engine has said it started: what the command announces only once it runs. */
  firstStarted?(): void;
}

/** Runs the engine process until it stops for good (see the module header); resolves with the exit code. */
export async function supervise(o: Supervision): Promise<number> {
  let child: ChildProcess | null = null;
  let stopping = false;
  let started = false;
  let delay = RESTART_FIRST_MS;
  // True while the current engine has said 'started': before that it has no handlers for its own
  // signals, which would kill it.
  let up = false;
  /** Ends the wait for interfaces between two engines early, when a stop signal comes. */
  let interruptWait: (() => void) | null = null;
  /** Kills an engine that has not stopped STOP_GRACE_MS after a stop signal. */
  let killTimer: NodeJS.Timeout | null = null;
  let killed = false;
  const forward = (sig: NodeJS.Signals): void => {
    const own = o.engineSignals.find((s) => s.signal === sig);
    if (own !== undefined && !up) {
      o.log(`${o.command}: ${sig} ignored: ${own.notYet}`);
      return;
    }
    // A hangup (the terminal or ssh session closing) stops it as SIGTERM does, offloads put back.
    const sent = sig === 'SIGHUP' ? 'SIGTERM' : sig;
    const c = child;
    if (own === undefined) {
      stopping = true;
      interruptWait?.();
      if (c !== null && killTimer === null) {
        killTimer = setTimeout(() => {
          // Exited, its 'close' still to come (a pipe of its held open elsewhere): nothing to kill.
          if (c.exitCode !== null || c.signalCode !== null) return;
          killed = true;
          o.log(`${o.command}: the engine has not stopped ${STOP_GRACE_MS / 1000} s after ${sent}: killing it; what it held is lost`);
          c.kill('SIGKILL');
        }, STOP_GRACE_MS);
      }
    }
    c?.kill(sent);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', ...o.engineSignals.map((s) => s.signal)];
  for (const sig of signals) process.on(sig, forward);
  const isUp = (name: string): boolean => interfaceState(name)?.up === true;
  /** The interface the next engine goes without ('' for none). */
  let without = o.optional !== undefined && !isUp(o.optional) ? o.optional : '';
  if (without !== '') {
    const state = interfaceState(without) === null ? 'does not exist' : 'is down';
    o.log(`${o.command}: ${without} ${state}: starting without it; once it is up, SIGUSR2 hands over to an engine that compares`);
  }
  // The engines turn offloads off (and GRO on with --gro); put the interfaces back as found when
  // the last one is gone. Taken once, before the first engine that uses the interface: a
  // restarted engine would find them already changed.
  const found = new Map<string, Map<string, boolean>>();
  let previousWithout = '';
  try {
    for (;;) {
      for (const [, name] of o.interfaces) if (name !== without && !found.has(name)) found.set(name, offloadFeatures(name));
      if (without !== '' && without !== previousWithout) o.watcher?.lost();
      previousWithout = without;
      const c = spawn(process.execPath, [...process.execArgv, ...missingNodeFlags(process.execArgv), process.argv[1]!, ...process.argv.slice(2)], {
        env: { ...process.env, [ENGINE_ENV]: started ? 'restart' : 'first', [WITHOUT_ENV]: without }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      });
      child = c;
      o.watcher?.attach(c);
      createInterface({ input: c.stderr! }).on('line', (line) => {
        if (!/^Warning: \S+: no IPv4 address assigned - This may not actually work$/.test(line)) process.stderr.write(`${line}\n`);
      });
      c.on('message', (m) => {
        if (m === 'started') {
          up = true;
          if (!started) o.firstStarted?.();
          started = true;
          delay = RESTART_FIRST_MS;
        }
      });
      // 'close', not 'exit': the engine's last messages (its final metrics) have come by then.
      const [code, signal] = (await once(c, 'close')) as [number | null, NodeJS.Signals | null];
      child = null;
      if (killTimer !== null) clearTimeout(killTimer);
      killTimer = null;
      o.watcher?.detach();
      const hadStarted = up;
      up = false;
      // Stopping: an engine that was handing over (EXIT_RESTART) when the signal came stopped too.
      if (stopping) return killed ? EXIT_ENGINE_KILLED : code === EXIT_RESTART ? 0 : code ?? 0;
      if (!started) return code ?? EXIT_USAGE;
      if (code === EXIT_RESTART && hadStarted) {
        o.watcher?.handedOver();
        without = '';
        o.log(`${o.command}: starting a new engine with every interface`);
        continue;
      }
      const optional = o.optional !== undefined ? ` (or without ${o.optional} while it is down)` : '';
      o.log(`${o.command}: the capture engine died (${signal ?? `exit code ${code}`})${signal === 'SIGABRT' ? ': cap 0.2.1 aborts when a captured interface goes down or away' : ''}; starting a new one once every interface is up${optional}`);
      for (;;) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          interruptWait = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        interruptWait = null;
        delay = Math.min(RESTART_MAX_MS, delay * 2);
        const down = o.interfaces.filter(([, name]) => name !== o.optional && !isUp(name)).map(([, name]) => name);
        if (stopping) {
          o.log(`${o.command}: stopped while ${down.length > 0 ? `waiting for ${down.join(', ')} to come up` : 'about to start a new engine'}`);
          return 0;
        }
        if (down.length === 0) break;
      }
      without = o.optional !== undefined && !isUp(o.optional) ? o.optional : '';
      if (!hadStarted) o.log(`${o.command}: the engine died before it had started; trying again`);
      else if (without !== '') o.log(`${o.command}: ${without} is down: starting a new engine without it`);
      else o.log(`${o.command}: every interface is up: starting a new engine`);
    }
  } finally {
    for (const sig of signals) process.off(sig, forward);
    for (const [name, before] of found) {
      const stuck = restoreOffloads(name, before);
      if (stuck.length > 0) o.log(`${o.command}: ${name}: could not restore ${stuck.join(', ')}`);
    }
  }
}
