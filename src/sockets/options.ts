import fs from 'node:fs';
import path from 'node:path';
import type { SocketOwner } from '../config/types';
import { OPTION_DEFS as DEFS, type Family, type OptionDef, type OptionKey, type SocketOptions } from '../contract/socket-options';
import { native } from '../native';

/** What a socket reports of each option, in config terms (status; what a reload compares). */
export type OptionValues = { [K in OptionKey]?: SocketOptions[K] };

/** Keys that act only at bind(). */
export const AT_BIND: ReadonlySet<OptionKey> = new Set(DEFS.filter((d) => d.atBind).map((d) => d.key));

function hint(code: string | undefined, key: OptionKey): string {
  if (code === 'EPERM') return ' (needs CAP_NET_ADMIN: run baton as root or give it that capability)';
  if (code === 'ENODEV') return ' (no network interface has that name)';
  if (code === 'ENOENT' && key === 'tcpCongestion') return ' (not an available algorithm: see /proc/sys/net/ipv4/tcp_available_congestion_control)';
  return '';
}

function setOne(fd: number, family: Family, d: OptionDef, v: unknown): void {
  const name = d.name(family)!;
  const k = d.toKernel ? d.toKernel(v) : (v as number | string);
  if (k === undefined) return;
  try {
    if (name === 'SO_RCVBUF' || name === 'SO_SNDBUF') setBuffer(fd, name, k as number);
    else native.setSockOpt(fd, name, k);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw Object.assign(new Error(`${d.key}: ${(e as Error).message}${hint(code, d.key)}`), { code });
  }
}

/**
 * SO_RCVBUF/SO_SNDBUF as systemd's fd_set_rcvbuf(): the kernel caps the size at
 * net.core.rmem_max/wmem_max; when it did, the FORCE variant (CAP_NET_ADMIN) passes the cap,
 * and without the capability the capped size stays. The kernel reports twice the size set.
 */
function setBuffer(fd: number, name: 'SO_RCVBUF' | 'SO_SNDBUF', n: number): void {
  native.setSockOpt(fd, name, n);
  if ((native.getSockOpt(fd, name) as number) >= 2 * n) return;
  try {
    native.setSockOpt(fd, name === 'SO_RCVBUF' ? 'SO_RCVBUFFORCE' : 'SO_SNDBUFFORCE', n);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
}

/** The options `opts` gives that a socket of `family` has, in the order they are set. */
const givenFor = (family: Family, opts: SocketOptions): OptionDef[] => DEFS.filter((d) => opts[d.key] !== undefined && d.name(family));

/** Sets every option `opts` gives (socket() to bind(), or a scratch socket); throws naming the key. */
export function applyOptions(fd: number, family: Family, opts: SocketOptions): void {
  for (const d of givenFor(family, opts)) setOne(fd, family, d, opts[d.key]);
}

/** What the socket reports of each option of its family; one the kernel does not answer is left out. */
export function readOptions(fd: number, family: Family): OptionValues {
  const out: Record<string, unknown> = {};
  for (const d of DEFS) {
    const name = d.name(family);
    if (!name) continue;
    try {
      const raw = native.getSockOpt(fd, name);
      out[d.key] = d.fromKernel ? d.fromKernel(raw) : raw;
    } catch {
      /* an option this kernel does not have */
    }
  }
  return out as OptionValues;
}

/** What a socket of `family` reports once `opts` are set on it: the kernel's defaults and roundings (DeferAcceptSec). Throws as applyOptions. */
export function reportedAfter(family: Family, opts: SocketOptions): OptionValues {
  const scratch = native.streamSocket(family);
  try {
    applyOptions(scratch, family, opts);
    return readOptions(scratch, family);
  } finally {
    fs.closeSync(scratch);
  }
}

/** Each option of `opts` the kernel refuses on a fresh socket of `family`, as `key: why` (baton check). */
export function refusedOptions(family: Family, opts: SocketOptions): string[] {
  const scratch = native.streamSocket(family);
  try {
    return givenFor(family, opts).flatMap((d) => {
      try {
        setOne(scratch, family, d, opts[d.key]);
        return [];
      } catch (e) {
        return [(e as Error).message];
      }
    });
  } finally {
    fs.closeSync(scratch);
  }
}

export interface OptionChanges {
  /** Live options to set at commit, in config terms. */
  set: Partial<SocketOptions>;
  /** Differences a held socket keeps (bind-time options): the plan is refused with these. */
  problems: string[];
  /** Differences that stay, said as a warning (a buffer size the config no longer gives). */
  kept: string[];
}

const show = (v: unknown) => (v === undefined || v === '' ? 'unset' : JSON.stringify(v));

/**
 * What it takes for a socket held already (`fd`) to have the options `wanted` gives: every
 * option is compared as the kernel reports it against a fresh socket with `wanted` set (so a
 * key the config no longer gives goes back to the kernel's default). Throws when the options
 * cannot be set at all (no privilege, no such interface or algorithm).
 */
export function retuneHeld(fd: number, family: Family, wanted: SocketOptions): OptionChanges {
  const want = reportedAfter(family, wanted);
  const have = readOptions(fd, family);
  const out: OptionChanges = { set: {}, problems: [], kept: [] };
  const set = out.set as Record<string, unknown>;
  for (const d of DEFS) {
    const k = d.key;
    if (!d.name(family) || want[k] === have[k]) continue;
    if (d.atBind) out.problems.push(`${k} is ${show(want[k])} in the config but ${show(have[k])} on the socket held`);
    else if (k === 'receiveBuffer' || k === 'sendBuffer') {
      if (wanted[k] === undefined) out.kept.push(`${k} stays ${have[k]} (the kernel's autotuning cannot be turned back on for a socket)`);
      else set[k] = wanted[k];
    } else set[k] = want[k];
  }
  // setting IP_TOS sets the priority too: set it again after
  if (set.ipTOS !== undefined && want.priority !== undefined) set.priority = want.priority;
  return out;
}

/** A unix socket file's permissions and owner, read without following a symlink; undefined when it is not a socket. */
export function socketFile(p: string): { mode: number; uid: number; gid: number } | undefined {
  try {
    const st = fs.lstatSync(p);
    return st.isSocket() ? { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A held unix socket's file against the mode and owner the config gives: a difference needs a
 * new socket (the file is changed only between bind() and listen(), through a checked fd).
 */
export function fileProblems(p: string, mode: number, owner: SocketOwner | undefined): string[] {
  const f = socketFile(p);
  if (!f) return [];
  const out: string[] = [];
  if (f.mode !== mode) out.push(`mode is ${octal(mode)} in the config but ${octal(f.mode)} on the socket file`);
  const uid = owner && owner.uid !== -1 ? owner.uid : process.geteuid!();
  if (f.uid !== uid) out.push(`user is uid ${uid} in the config but ${f.uid} on the socket file`);
  const gid = owner && owner.gid !== -1 ? owner.gid : defaultGid(path.dirname(p));
  if (f.gid !== gid) out.push(`group is gid ${gid} in the config but ${f.gid} on the socket file`);
  return out;
}

/** The group a new file in `dir` gets: the folder's if it is set-group-ID, else ours. */
function defaultGid(dir: string): number {
  try {
    const st = fs.statSync(dir);
    if (st.mode & 0o2000) return st.gid;
  } catch {
    /* gone: ours */
  }
  return process.getegid!();
}

export const octal = (m: number) => `0${(m & 0o7777).toString(8).padStart(3, '0')}`;
