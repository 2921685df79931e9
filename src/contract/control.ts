import path from 'node:path';

// One JSON object per line each way: the client sends a request, the master answers once.

export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'reload' }
  | { cmd: 'upgrade' }
  | { cmd: 'stop'; fast?: boolean };

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export function controlSocketPath(runtimeDir: string): string {
  return path.join(runtimeDir, 'control.sock');
}
