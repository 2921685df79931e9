import fs from 'node:fs';
import path from 'node:path';
import type { ListenerConfig, ListenerSpec, SocketOwner } from '../config/types';
import type { Family, SocketOptions } from '../contract/socket-options';
import { native, type SockInfo } from '../native';
import { formatSockAddr } from '../system/socket-address';
import { maxBacklog, notAListener, type InheritedFd } from '../contract/listen-fds';
import type { ListenerStatus, SocketOptionsStatus } from '../contract/control';
import { applyOptions, fileProblems, octal, readOptions, retuneHeld, socketFile } from './options';
import type { ListenerSource } from '../contract/upgrade-env';
import { clearStaleSocket } from './probe';
import { prepareFolder, UnsafeFolderError } from '../system/folders';

/** One named listener: one or more sockets (systemd gives one fd per Listen*= line of a unit). */
export interface Listener {
  name: string;
  fds: number[];
  source: ListenerSource;
  /** What it was bound from, when baton bound it (to tell a changed address on reload). */
  spec?: ListenerSpec;
  /** A unix socket file baton created and removes when it closes the listener. */
  ownedPath?: string;
}

/** A listener as status shows it: its addresses and options as the kernel reports them. */
export function describeListener(l: Listener): ListenerStatus {
  const infos = l.fds.map((fd) => {
    try {
      return native.sockInfo(fd);
    } catch {
      return undefined;
    }
  });
  return {
    name: l.name,
    source: l.source,
    fds: l.fds,
    addresses: infos.map((i) => (i ? formatSockAddr(i) : '(closed)')),
    options: l.fds.map((fd, i) => (infos[i] ? optionsOf(fd, infos[i]) : {})),
  };
}

const familyOf = (info: SockInfo): Family => (info.family === 'inet' ? 4 : info.family === 'inet6' ? 6 : 0);

function optionsOf(fd: number, info: SockInfo): SocketOptionsStatus {
  const out: SocketOptionsStatus = readOptions(fd, familyOf(info));
  const file = info.path && !info.path.startsWith('@') ? socketFile(info.path) : undefined;
  if (file) Object.assign(out, { mode: octal(file.mode), uid: file.uid, gid: file.gid });
  return out;
}

/**
 * What a process started with `ls` receives, fd 3 onwards: the fds in order, the name of
 * each (LISTEN_FDNAMES), and where this master has each from (for a successor master).
 */
export function passedOn(ls: Listener[]): { fds: number[]; names: string[]; sources: ListenerSource[] } {
  const each = ls.flatMap((l) => l.fds.map((fd) => ({ fd, l })));
  return {
    fds: each.map((e) => e.fd),
    names: each.map((e) => e.l.name),
    sources: each.map((e) => e.l.source),
  };
}

export class ListenerError extends Error {
  override name = 'ListenerError';
  constructor(
    message: string,
    /** The errno code of a failed bind. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Does the socket held (`have`) serve what the config asks for (`want`)? Port 0 asks for any port. */
function sameSpec(have: ListenerSpec | undefined, want: ListenerSpec | undefined): boolean {
  if (!have || !want || have.kind !== want.kind) return false;
  if (have.kind === 'unix' && want.kind === 'unix') return have.path === want.path;
  if (have.kind === 'tcp' && want.kind === 'tcp') {
    return have.host === want.host && have.family === want.family && (want.port === 0 || have.port === want.port);
  }
  return false;
}

/** What an inherited socket is bound to, in config terms. */
function specOf(info: InheritedFd['info']): ListenerSpec | undefined {
  if (info.family === 'unix' && info.path) return { kind: 'unix', path: info.path, text: info.path };
  if ((info.family === 'inet' || info.family === 'inet6') && info.address !== undefined && info.port !== undefined) {
    return { kind: 'tcp', host: info.address, family: info.family === 'inet' ? 4 : 6, port: info.port, text: formatSockAddr(info) };
  }
  return undefined;
}

/**
 * Groups inherited fds by name, in inherited order. `sourceOf` tells where each came from:
 * a socket from systemd is used whatever the config says of its address; one from a
 * predecessor master is kept only while the config still asks for its address.
 */
export function inheritedListeners(fds: InheritedFd[], sourceOf: (index: number) => ListenerSource): Listener[] {
  const byName = new Map<string, Listener>();
  fds.forEach((f, i) => {
    let l = byName.get(f.name);
    if (!l) byName.set(f.name, (l = { name: f.name, fds: [], source: sourceOf(i), spec: specOf(f.info) }));
    // takeListenFds has refused anything else; baton never listen()s on a socket it did not bind
    const why = notAListener(f.info);
    if (why) throw new ListenerError(`inherited fd ${f.fd} (name '${f.name}') ${why}`);
    l.fds.push(f.fd);
  });
  return [...byName.values()];
}

export interface ListenerPlan {
  /** The listeners the next generation gets, in config order. */
  active: Listener[];
  /** Bound for this plan: close them if the plan is abandoned. */
  added: Listener[];
  /** Held now but not in `active`: close them once the plan has taken effect. */
  removed: Listener[];
  /** Held sockets kept whose live options the config changes: set when the plan takes effect (applyRetunes). */
  retunes: Retune[];
}

interface Retune {
  name: string;
  fd: number;
  family: Family;
  set: Partial<SocketOptions>;
  /** Said as warnings: differences that stay. */
  kept: string[];
}

/** How a plan treats the sockets held (see planListeners). */
export interface PlanOptions {
  /**
   * A start nobody else serves the held sockets for (not a reload, not an upgrade's successor):
   * one of ours whose bind-time options changed is bound anew instead of refused, and the held
   * sockets not kept are released (`release`) before anything is bound, since they may hold an
   * address the config asks for.
   */
  release?: (gone: Array<{ l: Listener; why: string }>) => void;
  /** How long a bind meets EADDRINUSE after a release (systemd closes its stored copy when it reads our FDSTOREREMOVE). */
  inUseWaitMs?: number;
}

interface Kept {
  h: Listener;
  retunes: Retune[];
}

/**
 * Works out the listeners a config asks for against the ones held: a held listener with the
 * same name is kept (inherited ones whatever their address; bound ones while the address is
 * the same), the rest are bound. Nothing held is closed here, unless `opts.release` is given.
 */
export async function planListeners(held: Listener[], wanted: ListenerConfig[] | undefined, opts: PlanOptions = {}): Promise<ListenerPlan> {
  if (wanted === undefined) return { active: held.slice(), added: [], removed: [], retunes: [] };
  const heldByName = new Map(held.map((l) => [l.name, l]));
  const kept = new Map<ListenerConfig, Kept>();
  const replaced = new Map<Listener, string>();
  for (const w of wanted) {
    const h = heldByName.get(w.name);
    if (!h || !(h.source === 'systemd' || w.bind === undefined || sameSpec(h.spec, w.bind))) continue;
    // a socket from systemd is used as its .socket unit made it
    if (h.source === 'systemd' || !w.bind) {
      kept.set(w, { h, retunes: [] });
      continue;
    }
    const c = checkRetunes(h, w);
    if (c.problems.length === 0) kept.set(w, { h, retunes: c.retunes });
    else if (opts.release) replaced.set(h, `differs in what acts only when bound (${c.problems.join('; ')}): bound anew, connections queued in the old socket are reset`);
    else throw new ListenerError(`listener '${w.name}': ${c.problems.join('; ')}: ${KEPT_HINT}`);
  }
  const keep = new Set([...kept.values()].map((k) => k.h));
  const removed = held.filter((l) => !keep.has(l));
  if (opts.release && removed.length) opts.release(removed.map((l) => ({ l, why: replaced.get(l) ?? goneWhy(l, wanted) })));
  const released = opts.release ? removed : [];
  const active: Listener[] = [];
  const added: Listener[] = [];
  try {
    for (const w of wanted) {
      const k = kept.get(w);
      if (k) {
        active.push(k.h);
        continue;
      }
      if (!w.bind) {
        const names = held.map((l) => l.name).join(', ') || 'none';
        // the config and the unit disagree (FileDescriptorName=): a config error, which a restart cannot mend
        throw Object.assign(
          new ListenerError(
            `listener '${w.name}' has no tcp or unix address and no inherited socket has that name (inherited: ${names}); ` +
              "give it an address, or name a socket so in the unit's FileDescriptorName=",
          ),
          { exitCode: 78 },
        );
      }
      const l = await bindWaiting(released.length ? (opts.inUseWaitMs ?? 0) : 0, released, () =>
        bindListener(w.name, w.bind!, w.mode, w.backlog ?? maxBacklog(), w.options, w.owner),
      );
      added.push(l);
      active.push(l);
    }
  } catch (e) {
    added.forEach(closeListener);
    throw e;
  }
  return { active, added, removed, retunes: [...kept.values()].flatMap((k) => k.retunes) };
}

function goneWhy(l: Listener, wanted: ListenerConfig[]): string {
  return wanted.some((w) => w.name === l.name) ? 'is not at the configured address' : 'is not among the configured listeners';
}

/** A bind that meets EADDRINUSE while systemd may not yet have closed the stored copies just released is tried again. */
async function bindWaiting(ms: number, released: Listener[], bind: () => Promise<Listener>): Promise<Listener> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await bind();
    } catch (e) {
      if (!(e instanceof ListenerError) || e.code !== 'EADDRINUSE' || ms === 0) throw e;
      if (Date.now() >= until) {
        const names = released.map((l) => `'${l.name}'`).join(', ');
        throw new ListenerError(`${e.message}, or systemd still holds the stored socket(s) ${names} released ${ms} ms ago`, e.code);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const KEPT_HINT =
  "this acts only when a socket is bound, and this one is kept (reload, upgrade): give the listener another address, or stop baton and start it again";

/**
 * A held socket against the options the config gives it: live ones are set when the plan
 * takes effect; one that acts only at bind() (or a unix file's mode and owner) cannot change
 * on a socket that keeps its address (`problems`).
 */
function checkRetunes(h: Listener, w: ListenerConfig): { retunes: Retune[]; problems: string[] } {
  const retunes: Retune[] = [];
  const problems: string[] = [];
  for (const fd of h.fds) {
    const family = familyOf(native.sockInfo(fd));
    let r;
    try {
      r = retuneHeld(fd, family, w.options);
    } catch (e) {
      throw new ListenerError(`listener '${w.name}': ${(e as Error).message}`);
    }
    if (h.spec?.kind === 'unix') r.problems.push(...fileProblems(h.spec.path, w.mode, w.owner));
    problems.push(...r.problems);
    retunes.push({ name: w.name, fd, family, set: r.set, kept: r.kept });
  }
  return { retunes, problems: [...new Set(problems)] };
}

/** The live options a plan changes, set on the held sockets (when a reload commits); never throws. */
export function applyRetunes(plan: ListenerPlan, log: { info(m: string): void; warn(m: string): void }): void {
  for (const r of plan.retunes) {
    for (const k of r.kept) log.warn(`listener '${r.name}': ${k} until the socket is bound anew (another address, or a stop and start)`);
    if (Object.keys(r.set).length === 0) continue;
    try {
      applyOptions(r.fd, r.family, r.set);
      log.info(`listener '${r.name}': set ${JSON.stringify(r.set)}`);
    } catch (e) {
      log.warn(`listener '${r.name}': ${(e as Error).message}`);
    }
  }
}

export async function bindListener(
  name: string,
  spec: ListenerSpec,
  mode: number,
  backlog: number,
  options: SocketOptions = {},
  owner?: SocketOwner,
): Promise<Listener> {
  // set between socket() and bind(), as systemd does (some act only at bind)
  const prepare = (family: Family) => (fd: number) => {
    try {
      applyOptions(fd, family, options);
    } catch (e) {
      throw new ListenerError(`listener '${name}': cannot set up ${spec.text}: ${(e as Error).message}`);
    }
  };
  if (spec.kind === 'tcp') {
    const fd = tryBind(name, spec, () => native.listenSocket(spec.family, spec.host, spec.port, backlog, 0, prepare(spec.family)));
    return { name, fds: [fd], source: 'config', spec };
  }
  try {
    // a missing folder is made by baton (0755); a symlink on the way is followed only if root's or baton's user's
    prepareFolder(path.dirname(spec.path), { leafMode: 0o755, ownLeaf: false, anyFolder: true });
  } catch (e) {
    if (!(e instanceof UnsafeFolderError)) throw e;
    throw new ListenerError(`listener '${name}': cannot use the folder of ${spec.path}: ${e.message} (baton follows a symlink only if root or its own user owns it, and makes a missing folder itself)`);
  }
  await removeStaleSocket(name, spec.path);
  // bind() creates the file with `mode` itself: a chmod by path afterwards could follow a
  // symlink swapped in meanwhile (see the addon's bind_unix_with_mode); the owner is set
  // through an O_NOFOLLOW fd of the file checked to be the one bound (chown_socket_file)
  const fd = tryBind(name, spec, () =>
    native.listenSocket(0, spec.path, 0, backlog, mode, prepare(0), owner && [owner.uid, owner.gid]),
  );
  return { name, fds: [fd], source: 'config', spec, ownedPath: spec.path };
}

function tryBind(name: string, spec: ListenerSpec, bind: () => number): number {
  try {
    return bind();
  } catch (e) {
    if (e instanceof ListenerError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const hint =
      code === 'EADDRINUSE' ? ' (another process is listening there)'
      : code === 'EACCES' ? ' (a port below 1024 needs root or CAP_NET_BIND_SERVICE; a unix path needs write access)'
      : code === 'EADDRNOTAVAIL' ? ' (no interface has that address)'
      : '';
    throw new ListenerError(`listener '${name}': cannot bind ${spec.text}: ${(e as Error).message}${hint}`, code);
  }
}

/** A socket file nobody listens on any more (a crashed master's) is removed; a live one is an error. */
async function removeStaleSocket(name: string, p: string): Promise<void> {
  const found = await clearStaleSocket(p);
  if (found === 'not a socket') throw new ListenerError(`listener '${name}': ${p} exists and is not a socket`);
  if (found === 'live') throw new ListenerError(`listener '${name}': cannot bind ${p}: another process is listening there`);
}

export function closeListener(l: Listener): void {
  for (const fd of l.fds) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
  l.fds = [];
  if (l.ownedPath) {
    try {
      fs.unlinkSync(l.ownedPath);
    } catch {
      /* gone already */
    }
  }
}

export function describeAll(ls: Listener[]): string {
  return ls.map((l) => `${l.name}=${describeListener(l).addresses.join(',')}`).join(' ');
}
