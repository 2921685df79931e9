import { Writable } from 'node:stream';
import { openStdioSink } from '../log/fd-sink';
import type { Logger } from '../log/logger';

/**
 * The master's catch-all: its job is to keep the service up, so a bug in it is logged, not
 * fatal to the workers. A failed write to process.stdout or process.stderr (their reader gone
 * or stalled) is counted as a dropped line, not logged: the log may be that same pipe. Any
 * other error, whatever its code, is an internal error; one raised while reporting another is
 * only counted.
 */
export function reportInternalErrors(logger: Logger): void {
  let reporting = false;
  const internalError = (what: string, e: unknown) => {
    if (reporting) return logger.dropped(e);
    reporting = true;
    try {
      logger.error(`${what}: ${(e as Error)?.stack ?? e}`);
    } catch (e2) {
      logger.dropped(e2);
    } finally {
      reporting = false;
    }
  };
  process.on('uncaughtException', (e) => internalError('internal error', e));
  process.on('unhandledRejection', (e) => internalError('internal error (promise)', e));
  quietStdio((e) => logger.dropped(e));
}

/**
 * process.stdout and process.stderr, replaced before anything creates Node's own: Node makes
 * each on first use, and for a pipe or socket that sets O_NONBLOCK on fd 1 or 2, whose open
 * file description the workers share (they would get EAGAIN on their own writes). Node itself
 * reads process.stderr where nobody writes to it (net.Socket's destroy compares against it),
 * so a lazy listener is not enough. These write through the log's no-wait sink: nothing
 * waits on a stalled reader, and what fails is passed to `onError`.
 */
function quietStdio(onError: (e: unknown) => void): void {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]] as const) {
    let stream: Writable | undefined;
    const open = () => {
      const { sink } = openStdioSink(fd);
      const w = new Writable({
        write(chunk: Buffer, _enc, done) {
          const e = sink.write(chunk.toString());
          if (e) onError(e);
          done();
        },
      });
      return Object.assign(w, { fd, isTTY: false });
    };
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => (stream ??= open()) });
  }
}
