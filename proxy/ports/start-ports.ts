/**
 * Start-up order of a front end's sockets, shared by `compare`, `run` and `bridge`: the listening
 * ones first, then whatever the front end opens in between (`run` and `bridge`: their interfaces,
 * whose offloads they change), then the connecting ones. An address that cannot be listened on
 * thus fails before anything else is touched, and before a connecting socket logs its failures to
 * connect: the error, naming the socket's flag, is then the only line. On a failure `undo` runs
 * (closing what was opened) before the error is thrown.
 */

/** A socket to start: the flag that gave it (for the error), whether it listens, and how to start it. */
export interface StartingSocket {
  flag: string;
  listens: boolean;
  start(): Promise<void>;
}

export async function startListenersFirst(sockets: readonly StartingSocket[], undo: () => Promise<void>, between: () => void = () => {}): Promise<void> {
  const open = async (listening: boolean): Promise<void> => {
    for (const s of sockets) {
      if (s.listens !== listening) continue;
      try {
        await s.start();
      } catch (e) {
        await undo();
        throw new Error(`${s.flag}: cannot ${listening ? 'listen' : 'connect'}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await open(true);
  try {
    between();
  } catch (e) {
    await undo();
    throw e;
  }
  await open(false);
}
