import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signalGuardFile } from '../native';
import { IGNORED_BY_WORKERS } from './master-signals';

// The signal guard (src/native/signal_guard.c), preloaded into what baton starts: a successor
// master and the workers. `systemctl kill -s USR2` signals every process of the unit, again and
// again while new ones appear; a Node process that is starting cannot ignore a signal (Node
// resets an inherited SIG_IGN) until its JavaScript runs, and dies of it. The guard's
// constructor, run before main(), protects it from the first instruction on.

/** The signal numbers the guard ignores, comma-separated. */
export const ENV_SIGNAL_GUARD = 'BATON_SIGNAL_GUARD';
const GUARD_NAME = 'baton_signal_guard.node';

/**
 * LD_PRELOAD (the guard before whatever `env` preloads already) and BATON_SIGNAL_GUARD for a
 * process started with `env`; nothing when the guard was not built or its path cannot be
 * written in LD_PRELOAD (which splits on spaces and colons).
 */
export function signalGuardEnv(env: NodeJS.ProcessEnv, file = signalGuardFile): Record<string, string> {
  if (!file || /[\s:]/.test(file)) return {};
  const others = preloads(env).filter((e) => e !== file);
  return {
    LD_PRELOAD: [file, ...others].join(':'),
    [ENV_SIGNAL_GUARD]: IGNORED_BY_WORKERS.map((s) => os.constants.signals[s]).join(','),
  };
}

/** Takes the guard out of `env` again (a successor's own environment, which its workers start from). */
export function dropSignalGuard(env: NodeJS.ProcessEnv = process.env): void {
  if (env[ENV_SIGNAL_GUARD] === undefined) return;
  delete env[ENV_SIGNAL_GUARD];
  const others = preloads(env).filter((e) => path.basename(e) !== GUARD_NAME);
  if (others.length) env.LD_PRELOAD = others.join(':');
  else delete env.LD_PRELOAD;
}

/**
 * True when any user can load `file`: it is readable by others and every folder above it
 * searchable. Workers that run as another user get the guard only then (else the dynamic
 * loader prints an error in every program they start).
 */
export function loadableByAnyone(file: string): boolean {
  try {
    if ((fs.statSync(file).mode & 0o004) === 0) return false;
    for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0) return false;
      if (dir === path.dirname(dir)) return true;
    }
  } catch {
    return false;
  }
}

function preloads(env: NodeJS.ProcessEnv): string[] {
  return (env.LD_PRELOAD ?? '').split(/[\s:]+/).filter(Boolean);
}
