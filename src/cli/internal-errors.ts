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
  onStdioError((e) => logger.dropped(e));
}

/**
 * Calls `onError` for an 'error' of process.stdout or process.stderr, without creating them:
 * Node creates each on first use, and for a pipe or socket that sets O_NONBLOCK on fd 1 or 2,
 * whose open file description the workers share. So the listener is added on first use.
 */
function onStdioError(onError: (e: unknown) => void): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name);
    const get = d?.get;
    if (!get || !d.configurable) {
      process[name].on('error', onError);
      continue;
    }
    let seen: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: d.enumerable,
      get() {
        const s = get.call(process) as NodeJS.WriteStream;
        if (s !== seen) s.on('error', onError);
        seen = s;
        return s;
      },
    });
  }
}
