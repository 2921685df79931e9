import { spawnSync } from 'node:child_process';
import type { SocketOwner, WorkerIdentity } from './types';
import { findExecutable } from './executable';

/**
 * One entry of the user or group database, through getent: NSS, so users from LDAP, sssd
 * or systemd-userdb resolve as they will for initgroups() at exec time, not only
 * /etc/passwd. A name or a numeric id; undefined when there is no such entry.
 */
function getent(db: 'passwd' | 'group', key: string): string[] | string | undefined {
  if (key === '' || key.includes('\0') || key.startsWith('-')) return undefined;
  const r = spawnSync('getent', [db, key], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return `cannot look it up: getent: ${r.error.message}`;
  // getent exits 2 for "no such key"
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n')[0].split(':');
}

/**
 * Resolves workers.user and workers.group (names or numeric ids, as systemd's User= and
 * Group=). Returns the identity, or problems naming the key. Switching needs root: a
 * non-root master may only name its own user and group (a no-op), anything else is an
 * error, not a warning, since `run` could not start such workers.
 */
export function resolveIdentity(user: string | number | undefined, group: string | number | undefined): WorkerIdentity | string[] | undefined {
  if (user === undefined && group === undefined) return undefined;
  if (user === undefined) return ['/workers/group: needs workers.user (the workers would keep the master\'s user)'];
  const out: string[] = [];
  const pw = getent('passwd', String(user));
  if (typeof pw === 'string') return [`/workers/user: ${pw}`];
  if (!pw || pw.length < 7) return [`/workers/user: no user '${user}' in the user database (getent passwd)`];
  const id: WorkerIdentity = { name: pw[0], uid: Number(pw[2]), gid: Number(pw[3]), home: pw[5] || '/', shell: pw[6] || '/bin/sh', setpriv: '' };
  if (group !== undefined) {
    const gr = getent('group', String(group));
    if (typeof gr === 'string') out.push(`/workers/group: ${gr}`);
    else if (!gr || gr.length < 3) out.push(`/workers/group: no group '${group}' in the group database (getent group)`);
    else id.gid = Number(gr[2]);
  }
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) {
    if (id.uid !== euid) out.push(`/workers/user: baton runs as uid ${euid}, not root: it cannot start workers as '${id.name}' (uid ${id.uid})`);
    else if (id.gid !== process.getegid?.()) out.push(`/workers/group: baton runs as uid ${euid}, not root: it cannot start workers with gid ${id.gid}`);
  } else {
    const setpriv = findExecutable('setpriv', '/', process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin');
    if (setpriv.startsWith('!')) out.push(`/workers/user: needs setpriv (util-linux) to switch user: ${setpriv.slice(1)}`);
    else id.setpriv = setpriv;
  }
  return out.length ? out : id;
}

/**
 * listeners[].user and group of a unix socket (SocketUser=/SocketGroup=): names or ids
 * through NSS; the user alone gives its primary group too, as systemd does. A non-root
 * master may give the file only to itself and to a group it is in (chown(2)).
 */
export function resolveSocketOwner(user: string | number | undefined, group: string | number | undefined, at: string): SocketOwner | string[] | undefined {
  if (user === undefined && group === undefined) return undefined;
  const out: string[] = [];
  const owner: SocketOwner = { uid: -1, gid: -1 };
  if (user !== undefined) {
    const pw = getent('passwd', String(user));
    if (typeof pw === 'string') out.push(`${at}/user: ${pw}`);
    else if (!pw || pw.length < 7) out.push(`${at}/user: no user '${user}' in the user database (getent passwd)`);
    else [owner.uid, owner.gid] = [Number(pw[2]), Number(pw[3])];
  }
  if (group !== undefined) {
    const gr = getent('group', String(group));
    if (typeof gr === 'string') out.push(`${at}/group: ${gr}`);
    else if (!gr || gr.length < 3) out.push(`${at}/group: no group '${group}' in the group database (getent group)`);
    else owner.gid = Number(gr[2]);
  }
  const euid = process.geteuid?.() ?? 0;
  if (out.length === 0 && euid !== 0) {
    if (owner.uid !== -1 && owner.uid !== euid) out.push(`${at}/user: baton runs as uid ${euid}, not root: it cannot give the socket file to uid ${owner.uid}`);
    const groups = [process.getegid?.(), ...(process.getgroups?.() ?? [])];
    if (owner.gid !== -1 && !groups.includes(owner.gid)) out.push(`${at}/group: baton runs as uid ${euid}, not root, and is not in group ${owner.gid}: it cannot give the socket file to it`);
  }
  return out.length ? out : owner;
}
