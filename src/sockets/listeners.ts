import fs from 'node:fs';
import path from 'node:path';
import type { ListenerConfig, ListenerSpec, SocketOptions, SocketOwner } from '../config/types';
import { native, type SockInfo } from '../native';
import { formatSockAddr } from './address';
import { maxBacklog, notAListener, type InheritedFd } from '../contract/listen-fds';
import type { ListenerStatus, SocketOptionsStatus } from '../contract/control';
import { applyOptions, fileProblems, octal, readOptions, retuneHeld, socketFile, type Family } from './options';
import type { ListenerSource } from '../contract/upgrade-env';
import { unixSocketAnswers } from './probe';

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

/**
 * Works out the listeners a config asks for against the ones held: a held listener with the
 * same name is kept (inherited ones whatever their address; bound ones while the address is
 * the same), the rest are bound. Nothing held is closed here.
 */
export async function planListeners(held: Listener[], wanted: ListenerConfig[] | undefined): Promise<ListenerPlan> {
  if (wanted === undefined) return { active: held.slice(), added: [], removed: [], retunes: [] };
  const heldByName = new Map(held.map((l) => [l.name, l]));
  const active: Listener[] = [];
  const added: Listener[] = [];
  const retunes: Retune[] = [];
  try {
    for (const w of wanted) {
      const h = heldByName.get(w.name);
      if (h && (h.source === 'systemd' || w.bind === undefined || sameSpec(h.spec, w.bind))) {
        // a socket from systemd is used as its .socket unit made it
        if (h.source !== 'systemd' && w.bind) retunes.push(...retunesOf(h, w));
        active.push(h);
        continue;
      }
      if (!w.bind) {
        const names = held.map((l) => l.name).join(', ') || 'none';
        throw new ListenerError(
          `listener '${w.name}' has no tcp or unix address and no inherited socket has that name (inherited: ${names})`,
        );
      }
      const l = await bindListener(w.name, w.bind, w.mode, w.backlog ?? maxBacklog(), w.options, w.owner);
      added.push(l);
      active.push(l);
    }
  } catch (e) {
    added.forEach(closeListener);
    throw e;
  }
  const keep = new Set(active);
  return { active, added, removed: held.filter((l) => !keep.has(l)), retunes };
}

/**
 * A held socket against the options the config gives it: live ones are set when the plan
 * takes effect; one that acts only at bind() (or a unix file's mode and owner) cannot change
 * on a socket that keeps its address, and the plan is refused naming it.
 */
function retunesOf(h: Listener, w: ListenerConfig): Retune[] {
  return h.fds.map((fd) => {
    const family = familyOf(native.sockInfo(fd));
    let r;
    try {
      r = retuneHeld(fd, family, w.options);
    } catch (e) {
      throw new ListenerError(`listener '${w.name}': ${(e as Error).message}`);
    }
    if (h.spec?.kind === 'unix') r.problems.push(...fileProblems(h.spec.path, w.mode, w.owner));
    if (r.problems.length) {
      throw new ListenerError(
        `listener '${w.name}': ${r.problems.join('; ')}: this acts only when a socket is bound, and this one is kept ` +
          `(reload, upgrade, restart with systemd's FD store): give the listener another address, or stop baton and start it again`,
      );
    }
    return { name: w.name, fd, family, set: r.set, kept: r.kept };
  });
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
  fs.mkdirSync(path.dirname(spec.path), { recursive: true, mode: 0o755 });
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
    throw new ListenerError(`listener '${name}': cannot bind ${spec.text}: ${(e as Error).message}${hint}`);
  }
}

/** A socket file nobody listens on any more (a crashed master's) is removed; a live one is an error. */
async function removeStaleSocket(name: string, p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ListenerError(`listener '${name}': ${p} exists and is not a socket`);
  if (await unixSocketAnswers(p)) throw new ListenerError(`listener '${name}': cannot bind ${p}: another process is listening there`);
  fs.unlinkSync(p);
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
