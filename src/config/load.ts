import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import { controlSocketPath } from '../contract/control';
import { parseTcp } from './tcp-address';
import { availableCpus } from '../system/cpus';
import { appendFileProblem } from '../system/trusted-path';
import { execProblems } from './exec-limits';
import { findExecutable } from './executable';
import { resolveIdentity, resolveSocketOwner } from './identity';
import { listenerOptionProblems, resolveSocketOptions, type RawListener } from './listener-options';
import { bytes } from './size';
import { ConfigError, type Config, type ListenerConfig, type ListenerSpec } from './types';
// baton.schema.json compiled by ajv at build time (scripts/schema-validator.js, make build)
import generatedValidator from './schema-validator.generated';

const validate = generatedValidator as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Reads, validates and resolves a config file. Throws ConfigError naming every problem. */
export function loadConfig(file: string): Config {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    throw new ConfigError(abs, [`cannot read the config file: ${(e as Error).message}`]);
  }
  return parseConfig(text, abs);
}

export function parseConfig(text: string, abs: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(abs, [`invalid JSON: ${jsonErrorWhere(text, (e as Error).message)}`]);
  }
  // every problem at once: the schema's, then what it cannot say, then what needs the system
  // (users, files, CPUs), each pass as far as the data lets it run. A later pass's problem at a
  // path the schema already faulted is left out: the schema's word on it is the clearer one.
  const schemaProblems = validate(raw) ? [] : dedupe((validate.errors || []).filter((e) => !e.propertyName && e.keyword !== 'if').map(describeAjvError));
  const valid = raw as unknown as RawConfig;
  const problems = [...schemaProblems];
  const more = (found: () => string[]) => {
    let got: string[];
    try {
      got = found();
    } catch (e) {
      // data the schema refused, which this pass cannot read: the schema has said so; on data
      // it passed, a check that throws is a fault to show, never a check skipped
      if (schemaProblems.length === 0) throw e;
      return;
    }
    problems.push(...got.filter((p) => !schemaProblems.some((s) => p.startsWith(s.slice(0, s.indexOf(':') + 1)))));
  };
  more(() => [...listenerProblems(valid), ...recycleProblems(valid), ...reloadProblems(valid), ...metricsProblems(valid)]);
  // resolve() reads only what the checks above passed: with problems, it may meet anything
  let cfg: Config | undefined;
  try {
    cfg = resolve(valid, abs);
  } catch (e) {
    if (problems.length === 0) throw e;
    throw new ConfigError(abs, problems);
  }
  if (typeof valid.workers !== 'object' || valid.workers === null) throw new ConfigError(abs, problems);
  const c = cfg;
  more(() => {
    const id = resolveIdentity(valid.workers.user, valid.workers.group);
    if (Array.isArray(id)) return id;
    c.workers.user = id;
    return [];
  });
  if (valid.workers.count === 'auto') {
    const cpus = availableCpus();
    if (typeof cpus === 'string') problems.push(`/workers/count: "auto": cannot tell how many CPUs baton may run on (${cpus}); write a number of workers (1 to 1024) instead`);
    else [c.workers.count, c.workers.countAuto] = [cpus.count, cpus];
  }
  more(() =>
    (Array.isArray(valid.listeners) ? valid.listeners : []).flatMap((l, i) => {
      // a listener already faulted (user on a tcp listener, say): its owner is not looked up as well
      if (problems.some((p) => p.startsWith(`/listeners/${i}/`) || p.startsWith(`/listeners/${i}:`))) return [];
      const owner = resolveSocketOwner(l.user, l.group, `/listeners/${i}`);
      if (Array.isArray(owner)) return owner;
      c.listeners![i].owner = owner;
      return [];
    }),
  );
  more(() => semanticProblems(c));
  if (problems.length) throw new ConfigError(abs, dedupe(problems));
  return c;
}

interface RawConfig {
  name?: string;
  pidfile?: string;
  runtimeDir?: string;
  listeners?: RawListener[];
  workers: {
    command: string[];
    count?: number | 'auto';
    cwd?: string;
    env?: Record<string, string>;
    adapt?: 'auto' | 'node' | 'off';
    ready?: 'notify' | 'spawn';
    readyTimeoutMs?: number;
    stopSignal?: NodeJS.Signals;
    stopTimeoutMs?: number;
    watchdogMs?: number;
    watchdogSignal?: NodeJS.Signals;
    user?: string | number;
    group?: string | number;
    maxMemory?: string;
    maxMemorySamples?: number;
    sampleIntervalMs?: number;
    maxAgeMs?: number;
    maxAgeJitterMs?: number;
    maxRecycling?: number;
  };
  reload?: { soakMs?: number; maxDraining?: number; strategy?: 'generation' | 'rolling'; surge?: number };
  upgrade?: { mode?: 'auto' | 'manual'; timeoutMs?: number };
  log?: { level?: Config['log']['level']; format?: Config['log']['format']; file?: string };
  fdStore?: boolean;
  metrics?: { listen: string };
}

/**
 * The runtime folder a config without `runtimeDir` uses; the client commands find the
 * master there. Under systemd it is the unit's RuntimeDirectory= (baton@.service has
 * baton/%i, so /run/baton/<name>, whatever user DynamicUser= picked); root's client
 * commands compute the same path. A non-root user without XDG_RUNTIME_DIR gets logind's
 * /run/user/<uid> if it is there, else a folder in their home: never one in a shared folder
 * such as /tmp that another user could make first.
 */
export function defaultRuntimeDir(name: string): string {
  const fromSystemd = process.env.RUNTIME_DIRECTORY?.split(':')[0];
  if (fromSystemd && path.isAbsolute(fromSystemd)) return fromSystemd;
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return path.join('/run/baton', name);
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'baton', name);
  // what XDG_RUNTIME_DIR would be (logind's, the user's own) when the variable was lost (su, cron)
  const userRun = `/run/user/${uid}`;
  try {
    const st = fs.lstatSync(userRun);
    if (st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return path.join(userRun, 'baton', name);
  } catch {
    /* no session folder: the home folder's */
  }
  return path.join(os.homedir(), '.baton', name);
}

export interface MasterLocation {
  file: string;
  name: string;
  runtimeDir: string;
  pidfile: string;
}

function locate(raw: { name?: unknown; runtimeDir?: unknown; pidfile?: unknown }, abs: string): MasterLocation {
  const rel = (p: string) => path.resolve(path.dirname(abs), p);
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const name = str(raw.name) ?? path.basename(abs).replace(/\.json$/i, '');
  const runtimeDir = str(raw.runtimeDir) ? rel(str(raw.runtimeDir)!) : defaultRuntimeDir(name);
  const pidfile = str(raw.pidfile) ? rel(str(raw.pidfile)!) : path.join(runtimeDir, 'baton.pid');
  return { file: abs, name, runtimeDir, pidfile };
}

/** How long the master's operations may take, by the config (the defaults of `resolve`). */
export interface OperationTimeouts {
  readyMs: number;
  stopMs: number;
  upgradeMs: number;
  soakMs: number;
}

const DEFAULT_TIMEOUTS: OperationTimeouts = { readyMs: 30000, stopMs: 30000, upgradeMs: 60000, soakMs: 0 };

/**
 * Where the master of a config file keeps its control socket and pidfile, and its timeouts
 * (for how long a client waits), read leniently: a config broken on disk must not stop
 * `baton reload` from reaching the running master, which validates it and reports what is
 * wrong. A timeout missing or invalid is the default.
 */
export function locateMaster(file: string): MasterLocation & { timeouts: OperationTimeouts } {
  const abs = path.resolve(file);
  let raw: unknown = {};
  let text = '';
  try {
    text = fs.readFileSync(abs, 'utf8');
    raw = JSON.parse(text);
  } catch {
    // Not JSON (a typo on disk): pick the three top-level strings out of the text, so the
    // running master can still be asked, and say what is wrong.
    const pick = (key: string) => new RegExp(`"${key}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(text)?.[1];
    raw = { name: pick('name'), runtimeDir: pick('runtimeDir'), pidfile: pick('pidfile') };
  }
  const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  const ms = (v: unknown, dflt: number) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 86400000 ? (v as number) : dflt);
  const r = obj(raw);
  const w = obj(r.workers);
  const timeouts = {
    readyMs: ms(w.readyTimeoutMs, DEFAULT_TIMEOUTS.readyMs),
    stopMs: ms(w.stopTimeoutMs, DEFAULT_TIMEOUTS.stopMs),
    upgradeMs: ms(obj(r.upgrade).timeoutMs, DEFAULT_TIMEOUTS.upgradeMs),
    soakMs: ms(obj(r.reload).soakMs, DEFAULT_TIMEOUTS.soakMs),
  };
  return { ...locate(r, abs), timeouts };
}

function resolve(raw: RawConfig, abs: string): Config {
  const dir = path.dirname(abs);
  const rel = (p: string) => path.resolve(dir, p);
  const { name, runtimeDir, pidfile } = locate(raw, abs);
  const listeners = raw.listeners?.map(
    (l): ListenerConfig => ({
      name: l.name,
      // listenerProblems() has rejected every tcp value parseTcp() refuses
      bind: l.tcp !== undefined ? (parseTcp(l.tcp) as ListenerConfig['bind'])
        : l.unix !== undefined ? { kind: 'unix', path: rel(l.unix), text: rel(l.unix) } : undefined,
      mode: parseInt(l.mode ?? '0660', 8),
      backlog: l.backlog,
      options: resolveSocketOptions(l),
    }),
  );
  const w = raw.workers;
  return {
    file: abs,
    name,
    runtimeDir,
    pidfile,
    listeners,
    workers: {
      command: w.command,
      // "auto": resolved by parseConfig
      count: typeof w.count === 'number' ? w.count : 1,
      cwd: rel(w.cwd ?? '.'),
      env: w.env ?? {},
      adapt: w.adapt ?? 'auto',
      ready: w.ready ?? 'notify',
      readyTimeoutMs: w.readyTimeoutMs ?? DEFAULT_TIMEOUTS.readyMs,
      stopSignal: w.stopSignal ?? 'SIGTERM',
      stopTimeoutMs: w.stopTimeoutMs ?? DEFAULT_TIMEOUTS.stopMs,
      watchdogMs: w.watchdogMs ?? 0,
      watchdogSignal: w.watchdogSignal ?? 'SIGABRT',
      maxMemory: w.maxMemory === undefined ? undefined : bytes(w.maxMemory),
      maxMemorySamples: w.maxMemorySamples ?? 3,
      sampleIntervalMs: w.sampleIntervalMs ?? 5000,
      maxAgeMs: w.maxAgeMs ?? 0,
      maxAgeJitterMs: w.maxAgeJitterMs ?? Math.round((w.maxAgeMs ?? 0) / 10),
      maxRecycling: w.maxRecycling ?? 1,
    },
    reload: {
      soakMs: raw.reload?.soakMs ?? DEFAULT_TIMEOUTS.soakMs,
      maxDraining: raw.reload?.maxDraining ?? 4,
      strategy: raw.reload?.strategy ?? 'generation',
      surge: raw.reload?.surge ?? 1,
    },
    upgrade: { mode: raw.upgrade?.mode ?? 'auto', timeoutMs: raw.upgrade?.timeoutMs ?? DEFAULT_TIMEOUTS.upgradeMs },
    log: { level: raw.log?.level ?? 'info', format: raw.log?.format ?? 'text', file: raw.log?.file && rel(raw.log.file) },
    fdStore: raw.fdStore,
    // metricsProblems() has rejected every value parseMetricsListen() refuses
    metrics: raw.metrics && { listen: parseMetricsListen(raw.metrics.listen) as ListenerSpec },
  };
}

/** What JSON Schema cannot say about listeners: address syntax, unique names, one address kind. */
function listenerProblems(raw: RawConfig): string[] {
  const out: string[] = [];
  const seen = new Map<string, number>();
  raw.listeners?.forEach((l, i) => {
    const prev = seen.get(l.name);
    if (prev !== undefined) out.push(`/listeners/${i}/name: '${l.name}' is already the name of /listeners/${prev}`);
    seen.set(l.name, i);
    if (l.tcp !== undefined && l.unix !== undefined) out.push(`/listeners/${i}: give either tcp or unix, not both`);
    if (l.mode !== undefined && l.unix === undefined) out.push(`/listeners/${i}/mode: only applies to a unix listener`);
    out.push(...listenerOptionProblems(l, `/listeners/${i}`));
    if (l.tcp !== undefined) {
      const parsed = parseTcp(l.tcp);
      if (typeof parsed === 'string') out.push(`/listeners/${i}/tcp: ${parsed}`);
    }
  });
  return out;
}

/** Recycling keys that need another one, and a memory limit of nothing. */
function recycleProblems(raw: RawConfig): string[] {
  const w = raw.workers;
  const out: string[] = [];
  if (w.maxMemory !== undefined && bytes(w.maxMemory) === 0) out.push(`/workers/maxMemory: '${w.maxMemory}' is no memory at all; leave the key out for no limit`);
  if (w.maxMemorySamples !== undefined && w.maxMemory === undefined) out.push('/workers/maxMemorySamples: only applies with workers.maxMemory');
  if (w.maxAgeJitterMs !== undefined && !w.maxAgeMs) out.push('/workers/maxAgeJitterMs: only applies with workers.maxAgeMs (above 0): it is added to each worker\'s maximum age');
  return out;
}

/** metrics.listen: an absolute path is a unix socket; anything else a tcp address. */
function parseMetricsListen(text: string): ListenerSpec | string {
  if (text.startsWith('/')) return { kind: 'unix', path: path.normalize(text), text };
  return parseTcp(text);
}

function metricsProblems(raw: RawConfig): string[] {
  if (!raw.metrics) return [];
  const l = parseMetricsListen(raw.metrics.listen);
  if (typeof l === 'string') return [`/metrics/listen: ${l} (or an absolute path for a unix socket)`];
  if (l.kind === 'unix' && Buffer.byteLength(l.path) > MAX_UNIX_PATH) return [`/metrics/listen: '${l.path}' is ${Buffer.byteLength(l.path)} bytes; a unix socket path may be at most ${MAX_UNIX_PATH} (sun_path)`];
  return [];
}

/** Reload keys that need another one, or contradict one. */
function reloadProblems(raw: RawConfig): string[] {
  const r = raw.reload ?? {};
  const out: string[] = [];
  if (r.surge !== undefined && r.strategy !== 'rolling') out.push('/reload/surge: only applies with reload.strategy "rolling" (a generation reload starts every new worker at once)');
  const soak = r.soakMs ?? DEFAULT_TIMEOUTS.soakMs;
  const upgrade = raw.upgrade?.timeoutMs ?? DEFAULT_TIMEOUTS.upgradeMs;
  if (soak > upgrade) {
    out.push(
      `/reload/soakMs: ${soak} ms is longer than upgrade.timeoutMs (${upgrade} ms); a binary upgrade soaks as long as a reload, and the old master ` +
        'would wait longer for the successor to prove itself than it lets it take to start; raise upgrade.timeoutMs to at least reload.soakMs, or shorten the soak',
    );
  }
  return out;
}

/** sun_path is 108 bytes, its NUL included; a longer path cannot be bound. */
const MAX_UNIX_PATH = 107;

/**
 * The worker's folder and program must exist: a typo is a config error, not a crash loop.
 * And nothing `run` cannot start: a unix path too long to bind, workers execve() refuses.
 */
function semanticProblems(cfg: Config): string[] {
  const out: string[] = [];
  cfg.listeners?.forEach((l, i) => {
    const n = l.bind?.kind === 'unix' ? Buffer.byteLength(l.bind.path) : 0;
    if (n > MAX_UNIX_PATH) out.push(`/listeners/${i}/unix: '${l.bind!.text}' is ${n} bytes; a unix socket path may be at most ${MAX_UNIX_PATH} (sun_path)`);
  });
  // an upgrade's successor binds control.sock.<its pid> beside control.sock (pid_max: 7 digits)
  const ctl = `${controlSocketPath(cfg.runtimeDir)}.4194304`;
  if (Buffer.byteLength(ctl) > MAX_UNIX_PATH) {
    out.push(
      `/runtimeDir: '${cfg.runtimeDir}' is too long: the control socket path in it (up to ${Buffer.byteLength(ctl)} bytes, ` +
        `${ctl}) may be at most ${MAX_UNIX_PATH} bytes (sun_path); set a shorter runtimeDir`,
    );
  }
  if (!fs.existsSync(cfg.workers.cwd) || !fs.statSync(cfg.workers.cwd).isDirectory()) {
    out.push(`/workers/cwd: '${cfg.workers.cwd}' is not an existing folder`);
  } else {
    const exe = findExecutable(cfg.workers.command[0], cfg.workers.cwd, cfg.workers.env.PATH ?? process.env.PATH);
    if (typeof exe === 'string' && exe.startsWith('!')) out.push(`/workers/command/0: ${exe.slice(1)}`);
    else out.push(...execProblems(cfg, process.env));
  }
  // judged as the user this runs as: contract.md has `check` run as baton's user
  // with workers.count "auto" resolved: 1 on a one-CPU host
  if (cfg.reload.strategy === 'rolling' && cfg.reload.surge === 0 && cfg.workers.count === 1) {
    out.push(`/reload/surge: 0 with ${cfg.workers.countAuto ? 'workers.count "auto" resolved to' : 'workers.count'} 1 would stop the only worker before its replacement starts: nothing would serve meanwhile; use a surge of 1 or more`);
  }
  const logProblem = cfg.log.file && appendFileProblem(cfg.log.file);
  if (logProblem) out.push(`/log/file: '${cfg.log.file}': ${logProblem}`);
  return out;
}

function describeAjvError(e: ErrorObject): string {
  const at = e.instancePath || '';
  if (/^\/(workers|listeners\/\d+)\/(user|group)$/.test(at)) return `${at}: must be a name or a numeric id`;
  if (at === '/workers/maxMemory') return `${at}: must be a size with its unit, a number followed by K, M or G (1024-based), such as "512M"; a bare number is refused (bytes or megabytes?)`;
  if (/^\/listeners\/\d+\/(receiveBuffer|sendBuffer)$/.test(at)) return `${at}: must be a size in bytes from 1 to 1073741823, or a number with K, M or G (1024-based) such as "256K"`;
  if (at === '/workers/count' && (e.keyword === 'type' || e.keyword === 'const')) return `${at}: must be an integer from 1 to 1024, or "auto" (one worker per CPU baton may run on)`;
  if (/^\/listeners\/\d+\/ipTOS$/.test(at)) return `${at}: must be 0-255 or one of "low-delay", "throughput", "reliability", "low-cost"`;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const near = nearestKey(at, key);
      return `${at}/${key}: unknown key${near ? ` (did you mean ${near}?)` : ''}`;
    }
    case 'required':
      return `${at}/${(e.params as { missingProperty: string }).missingProperty}: is required`;
    case 'enum':
      if (at === '/workers/stopSignal') {
        return `${at}: must be one of SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGKILL (workers ignore SIGHUP, SIGUSR2 and SIGWINCH, the master's signals: every stop would end in SIGKILL at stopTimeoutMs)`;
      }
      if (at === '/workers/watchdogSignal') {
        return `${at}: must be one of SIGABRT, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGKILL (a signal that ends a hung process by default; workers ignore SIGHUP, SIGUSR2 and SIGWINCH)`;
      }
      return `${at || '/'}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'propertyNames':
      return `${at}: '${(e.params as { propertyName: string }).propertyName}' is not a variable name (no '=', no NUL byte, not empty)`;
    case 'pattern':
      if ((e.params as { pattern: string }).pattern.includes('\\u0000')) return `${at}: must not contain a NUL byte (execve() and bind() end a string there)`;
      if (at.endsWith('/mode')) return `${at}: must be an octal file mode such as "0660"`;
      if (at.endsWith('/bindToDevice')) return `${at}: must be a network interface name (1-15 characters, no '/', ':' or white space)`;
      if (at.endsWith('/tcpCongestion')) return `${at}: must be a congestion control algorithm name such as "bbr" (letters, digits, _ and -, at most 15)`;
      return `${at}: must be letters, digits or _ . @ - (pattern ${(e.params as { pattern: string }).pattern})`;
    default:
      return `${at || '/'}: ${e.message}`;
  }
}

/** The schema's key at `at` (an object's path, /listeners/0 too) closest to `key`: a case slip, or 1 or 2 edits away by its length. */
function nearestKey(at: string, key: string): string | undefined {
  // loaded only for this message: the master has no use for the schema's text otherwise
  let node = require('./baton.schema.json') as { properties?: Record<string, unknown>; items?: unknown };
  for (const part of at.split('/').filter(Boolean)) {
    const next = /^\d+$/.test(part) ? node.items : node.properties?.[part];
    if (!next || typeof next !== 'object') return undefined;
    node = next as typeof node;
  }
  const keys = Object.keys(node.properties ?? {});
  const scored = keys.map((k) => ({ k, d: k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(k.toLowerCase(), key.toLowerCase()) }));
  const best = scored.sort((a, b) => a.d - b.d)[0];
  // a short key has too many neighbours to guess from (cmd: cwd?)
  const allowed = key.length >= 8 ? 2 : key.length >= 4 ? 1 : 0;
  return best && best.d <= allowed ? best.k : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

function jsonErrorWhere(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m || /line \d+ column \d+/.test(message)) return message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos).split('\n');
  return `${message} (line ${before.length} column ${before[before.length - 1].length + 1})`;
}
