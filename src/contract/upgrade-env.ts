import fs from 'node:fs';
import { frame } from './json-lines';
import { dropSignalGuard } from './signal-guard';
import type { SuccessorMessage } from './upgrade-channel';

// What a predecessor tells its successor through the environment, besides LISTEN_*: written
// by upgradeEnvVars(), read (and removed) by takeUpgradeEnv().
export const ENV_CHANNEL_FD = 'BATON_UPGRADE_FD';
export const ENV_NEXT_GENERATION = 'BATON_NEXT_GENERATION';
/**
 * Per inherited fd, comma-separated, where the successor has it from: "systemd" or
 * "predecessor". The name is the one baton 0.1.0 reads and writes (it wrote "config" for
 * "predecessor", and reads anything but "systemd" as its predecessor's), so a hot upgrade
 * works from and to it: the variable is part of the contract between two versions.
 */
export const ENV_SOURCES = 'BATON_LISTENER_ORIGINS';

/**
 * Where a master has a listening socket from: systemd's socket activation (kept whatever the
 * config says of its address), its predecessor master (kept while the config still asks for
 * its address), or its own config (bound by this master).
 */
export type ListenerSource = 'systemd' | 'predecessor' | 'config';

export class UpgradeEnvError extends Error {
  override name = 'UpgradeEnvError';
}

export interface UpgradeEnv {
  /** The successor's end of the channel (a socketpair). */
  channelFd: number;
  nextGeneration: number;
  /** Per inherited fd, in order: 'systemd' or 'predecessor'. */
  sources: ListenerSource[];
}

/**
 * The variables a predecessor sets for its successor. `held` is where the predecessor has
 * each fd from: one from systemd is systemd's for the successor too, any other is the
 * predecessor's.
 */
export function upgradeEnvVars(channelFd: number, nextGeneration: number, held: readonly ListenerSource[]): Record<string, string> {
  return {
    [ENV_CHANNEL_FD]: String(channelFd),
    [ENV_NEXT_GENERATION]: String(nextGeneration),
    [ENV_SOURCES]: held.map((s) => (s === 'systemd' ? 'systemd' : 'predecessor')).join(','),
  };
}

/** Reads and removes the successor's variables; null for a master that was not started by a predecessor. */
export function takeUpgradeEnv(env: NodeJS.ProcessEnv = process.env): UpgradeEnv | null {
  const fd = env[ENV_CHANNEL_FD];
  const next = env[ENV_NEXT_GENERATION];
  const sources = env[ENV_SOURCES];
  delete env[ENV_CHANNEL_FD];
  delete env[ENV_NEXT_GENERATION];
  delete env[ENV_SOURCES];
  dropSignalGuard(env);
  if (fd === undefined) return null;
  if (!/^\d+$/.test(fd) || !/^\d+$/.test(next ?? '')) throw new UpgradeEnvError(`bad upgrade environment: ${ENV_CHANNEL_FD}=${fd} ${ENV_NEXT_GENERATION}=${next}`);
  // "config": written by baton 0.1.0 for a socket it had bound, which is the predecessor's here
  const list = (sources ? sources.split(',') : []).map((s) => (s === 'config' ? 'predecessor' : s));
  const bad = list.find((s) => s !== 'systemd' && s !== 'predecessor');
  if (bad !== undefined) throw new UpgradeEnvError(`bad upgrade environment: ${ENV_SOURCES}=${sources} ('${bad}' is neither systemd nor predecessor)`);
  return { channelFd: Number(fd), nextGeneration: Number(next), sources: list as ListenerSource[] };
}

/**
 * A successor that stops before its master runs (a config or inherited sockets it refuses)
 * tells the predecessor why, so that `baton upgrade` and the predecessor's log give the
 * reason, not only "exited before it was ready".
 */
export function reportEarlyFailure(up: UpgradeEnv, reason: string): void {
  const said: SuccessorMessage[] = [{ t: 'hello', pid: process.pid }, { t: 'failed', reason }];
  try {
    fs.writeSync(up.channelFd, said.map(frame).join(''));
  } catch {
    /* the predecessor has gone: nobody to tell */
  }
}
