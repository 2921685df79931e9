// The worker library's (serve/) and the adapter's log lines go to the worker's stderr: the
// master's, or journald's stream. When its reader is gone (the master's stderr closed, journald
// restarted) a write fails with EPIPE, and a stream 'error' nobody listens to exits the process,
// with every request it holds: a worker must not die of a log line. Once stderrSafe() has run,
// such write errors lose the line and nothing else; any other error is thrown as before.
const LOST_READER = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED']);
let installed = false;

export function stderrSafe(): void {
  if (installed) return;
  installed = true;
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (!LOST_READER.has(e.code ?? '')) throw e;
  });
}

/** A log function for the worker's stderr, each line prefixed, safe as above. */
export function stderrLog(prefix: string): (m: string) => void {
  stderrSafe();
  return (m) => void process.stderr.write(`${prefix} ${m}\n`);
}
