import fs from 'node:fs';

/** The NOTIFY_SOCKET a process was started with (its /proc environ), e.g. a worker's: the master's random address. */
export function notifySocketOf(pid: number): string {
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const v = env.find((e) => e.startsWith('NOTIFY_SOCKET='));
  if (!v) throw new Error(`process ${pid} has no NOTIFY_SOCKET`);
  return v.slice('NOTIFY_SOCKET='.length);
}
