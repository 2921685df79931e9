import fs from 'node:fs';
import type { ListenerSource } from '../sockets/listeners';
import { frame } from '../upgrade/channel';

// What a predecessor tells its successor through the environment, besides LISTEN_*.
export const ENV_CHANNEL_FD = 'BATON_UPGRADE_FD';
export const ENV_NEXT_GENERATION = 'BATON_NEXT_GENERATION';
/** Per inherited fd, where the predecessor had it from: "systemd" or "config". */
export const ENV_ORIGINS = 'BATON_LISTENER_ORIGINS';

export class UpgradeEnvError extends Error {
  override name = 'UpgradeEnvError';
}

export interface UpgradeEnv {
  channelFd: number;
  nextGeneration: number;
  /** Per inherited fd: 'systemd' keeps systemd's rule (inherited wins), 'predecessor' is compared with the config. */
  sources: ListenerSource[];
}

/** Reads and removes the successor's variables; null for a master that was not started by a predecessor. */
export function takeUpgradeEnv(env: NodeJS.ProcessEnv = process.env): UpgradeEnv | null {
  const fd = env[ENV_CHANNEL_FD];
  const next = env[ENV_NEXT_GENERATION];
  const origins = env[ENV_ORIGINS];
  delete env[ENV_CHANNEL_FD];
  delete env[ENV_NEXT_GENERATION];
  delete env[ENV_ORIGINS];
  if (fd === undefined) return null;
  if (!/^\d+$/.test(fd) || !/^\d+$/.test(next ?? '')) throw new UpgradeEnvError(`bad upgrade environment: ${ENV_CHANNEL_FD}=${fd} ${ENV_NEXT_GENERATION}=${next}`);
  return {
    channelFd: Number(fd),
    nextGeneration: Number(next),
    sources: (origins ? origins.split(',') : []).map((o) => (o === 'systemd' ? 'systemd' : 'predecessor')),
  };
}

/**
 * A successor that stops before its arbiter runs (a config or inherited sockets it refuses)
 * tells the predecessor why, so that `baton upgrade` and the predecessor's log give the
 * reason, not only "exited before it was ready".
 */
export function reportEarlyFailure(up: UpgradeEnv, reason: string): void {
  try {
    fs.writeSync(up.channelFd, frame({ t: 'hello', pid: process.pid }) + frame({ t: 'failed', reason }));
  } catch {
    /* the predecessor has gone: nobody to tell */
  }
}
