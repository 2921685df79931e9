import type { SocketOptions } from '../contract/socket-options';
import type { AvailableCpus } from '../system/cpus';

// The resolved configuration: every default filled in, every path absolute.

export type ListenerSpec =
  | { kind: 'tcp'; host: string; family: 4 | 6; port: number; text: string }
  | { kind: 'unix'; path: string; text: string };

export interface ListenerConfig {
  name: string;
  /** Where to bind when the socket is not inherited; undefined = must be inherited. */
  bind?: ListenerSpec;
  /** Permissions of a unix socket file baton creates. */
  mode: number;
  backlog?: number;
  /** systemd.socket(5) options of a socket baton binds; noDelay is true for tcp unless set. */
  options: SocketOptions;
  /** listeners[].user/group of a unix socket, resolved through NSS. */
  owner?: SocketOwner;
}

/** SocketUser=/SocketGroup= of a unix socket file; -1: unchanged (the group alone). */
export interface SocketOwner {
  uid: number;
  gid: number;
}

export type ReadyMode = 'notify' | 'spawn';
export type AdaptMode = 'auto' | 'node' | 'off';

export interface WorkersConfig {
  command: string[];
  /** Workers per generation: workers.count, or what "auto" resolved to when the config was loaded. */
  count: number;
  /** What workers.count "auto" found (count above is its `count`); undefined: a number was configured. */
  countAuto?: AvailableCpus;
  cwd: string;
  env: Record<string, string>;
  /** The Node adapter (contract/node-adapter.ts): preloaded into Node workers. */
  adapt: AdaptMode;
  ready: ReadyMode;
  readyTimeoutMs: number;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  /** Each worker's watchdog period (systemd's WatchdogSec=); 0: off. */
  watchdogMs: number;
  /** Sent to a worker's process group when its watchdog fires (WatchdogSignal=). */
  watchdogSignal: NodeJS.Signals;
  /** Who the workers run as (workers.user/group); undefined: as the master. */
  user?: WorkerIdentity;
  /** workers.maxMemory in bytes: a worker over it (PSS of its process group) is recycled; undefined: no limit, no sampling. */
  maxMemory?: number;
  /** Samples in a row over maxMemory that recycle a worker. */
  maxMemorySamples: number;
  /** How often a generation with a limit (maxMemory, maxAgeMs) checks its workers. */
  sampleIntervalMs: number;
  /** A worker older than this (plus its jitter) is recycled; 0: no age limit. */
  maxAgeMs: number;
  /** Each worker's own deadline adds a uniform random number of ms in [0, this]. */
  maxAgeJitterMs: number;
  /** Recycles in flight at once per generation (replacements starting). */
  maxRecycling: number;
}

/** workers.user and workers.group, resolved through NSS when the config is loaded. */
export interface WorkerIdentity {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** Absolute path of util-linux setpriv, which makes the switch (see config/worker-command.ts). */
  setpriv: string;
}

export interface Config {
  /** Absolute path of the file this was read from. */
  file: string;
  name: string;
  pidfile: string;
  runtimeDir: string;
  /** undefined: no `listeners` key, use every inherited socket in inherited order. */
  listeners?: ListenerConfig[];
  workers: WorkersConfig;
  /** soakMs: how long the old generation serves beside a new one that is ready (0: it drains at once). */
  /** strategy: a whole new generation beside the old one, or slot by slot with `surge` extra workers at most. */
  reload: { soakMs: number; maxDraining: number; strategy: 'generation' | 'rolling'; surge: number };
  upgrade: { mode: 'auto' | 'manual'; timeoutMs: number };
  log: LogConfig;
  /** Keep the sockets baton binds in systemd's FD store; undefined: when systemd says it has one ($FDSTORE). */
  fdStore?: boolean;
  /** metrics.listen: where the Prometheus endpoint listens; undefined: off. */
  metrics?: { listen: ListenerSpec };
}

export interface LogConfig {
  level: 'error' | 'warn' | 'info' | 'debug';
  format: 'text' | 'json';
  file?: string;
}

/** sysexits.h EX_CONFIG: what `baton check`, `baton run` and systemd's RestartPreventExitStatus= use. */
export const EX_CONFIG = 78;

export class ConfigError extends Error {
  readonly exitCode = EX_CONFIG;
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : '\n  ' + problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
