/** Parses an sd_notify datagram: newline-separated KEY=VALUE assignments. */
export function parseNotify(data: Buffer | string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of data.toString('utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

export function formatNotify(fields: Record<string, string | number>): Buffer {
  return Buffer.from(
    Object.entries(fields)
      // a newline inside a value would start a new assignment
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n'),
  );
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime reads CLOCK_MONOTONIC), for MONOTONIC_USEC. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}
