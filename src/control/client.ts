import net from 'node:net';
import path from 'node:path';
import type { MasterLocation } from '../config/load';
import { readPidfileInfo, type PidfileInfo } from '../system/pidfile';
import { isAlive, processInfo, stillRunning, type ProcessId } from '../system/process';
import { runtimeDirOwner } from '../system/runtime-dir';
import { native, socketFd } from '../native';
import { controlSocketPath, isControlReply, type ControlRequest, type ReplyTo } from '../contract/control';
import { frame, readJsonLines } from '../contract/json-lines';

/** The longest answer taken: a status of many workers with long STATUS= lines fits many times over. */
const MAX_REPLY = 16 * 1024 * 1024;

export class NoMasterError extends Error {
  override name = 'NoMasterError';
}

/** Something answers where the master should, but it is not provably this service's master. */
export class UntrustedMasterError extends Error {
  override name = 'UntrustedMasterError';
}

/** The client's deadline passed before the master answered (or, for a stop, exited). */
export class ClientTimeoutError extends Error {
  override name = 'ClientTimeoutError';
}

/** Who holds the other end of a unix socket, as the kernel says (SO_PEERCRED): not forgeable. */
export interface Peer {
  pid: number;
  uid: number;
  gid: number;
}

function peerOf(c: net.Socket): Peer {
  return native.peerCred(socketFd(c));
}

/**
 * Sends one request over the control socket and waits for the answer, with who gave it, until
 * `deadline` (Date.now() ms): then ClientTimeoutError, and the connection is closed (a master
 * that reads the request later drops it, see control/server.ts).
 */
export function exchange<R extends ControlRequest>(socketPath: string, req: R, deadline = Infinity): Promise<{ reply: ReplyTo<R>; peer: Peer }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let peer: Peer;
    const timer = deadline < Infinity ? setTimeout(() => fail(new ClientTimeoutError(`no answer from the master on ${socketPath}`)), Math.max(0, deadline - Date.now())) : undefined;
    // the first of these settles; the connection goes with it
    const fail = (e: Error) => {
      clearTimeout(timer);
      c.destroy();
      reject(e);
    };
    c.once('connect', () => {
      try {
        peer = peerOf(c);
      } catch (e) {
        return fail(e as Error);
      }
      c.write(frame(req));
    });
    const stop = readJsonLines(c, MAX_REPLY, {
      line: (l) => {
        stop();
        if (!l.ok || !isControlReply(l.value)) return fail(new Error(`malformed answer from the master: ${(l.ok ? JSON.stringify(l.value) : l.text).slice(0, 200)}`));
        clearTimeout(timer);
        c.destroy();
        resolve({ reply: l.value as ReplyTo<R>, peer });
      },
      tooLong: () => fail(new Error(`the master's answer is longer than ${MAX_REPLY} bytes`)),
    });
    c.once('error', fail);
    c.once('close', () => fail(new Error('the master closed the control connection without answering')));
  });
}

/** Sends one request over the control socket and waits for the answer (reload can take a while). */
export async function request<R extends ControlRequest>(socketPath: string, req: R): Promise<ReplyTo<R>> {
  return (await exchange(socketPath, req)).reply;
}

/** Who listens on `socketPath`, or null when nothing answers there. */
function probe(socketPath: string): Promise<Peer | null> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      let peer: Peer | null = null;
      try {
        peer = peerOf(c);
      } catch {
        /* gone meanwhile */
      }
      c.destroy();
      resolve(peer);
    });
    c.once('error', () => resolve(null));
  });
}

/** The runtime folder is `owner`'s: only `owner` (or root) can have bound a socket in it. */
function checkPeer(peer: Peer, owner: number, socketPath: string): void {
  if (peer.uid !== owner && peer.uid !== 0) {
    throw new UntrustedMasterError(
      `the control socket ${socketPath} is held by pid ${peer.pid} of uid ${peer.uid}, not by the runtime folder's owner (uid ${owner})`,
    );
  }
}

export type SocketTarget = { kind: 'socket'; path: string; owner: number };
/** `proc`: the master as found, signalled only while its pid is still that process's. */
export type Target = SocketTarget | { kind: 'pid'; pid: number; proc: ProcessId; why: string };

/**
 * Finds the master: its control socket if it answers, else the pid in the pidfile. Both
 * only in a runtime folder nobody else controls; the socket's listener must be the folder's
 * owner (SO_PEERCRED), a pid from the pidfile a process of the pidfile's owner started
 * before the pidfile was written (not a recycled pid).
 */
export async function findMaster(cfg: MasterLocation): Promise<Target> {
  const owner = runtimeDirOwner(cfg.runtimeDir);
  const sock = controlSocketPath(cfg.runtimeDir);
  if (owner !== null) {
    const peer = await probe(sock);
    if (peer) {
      checkPeer(peer, owner, sock);
      return { kind: 'socket', path: sock, owner };
    }
  }
  const why = owner === null ? `no runtime folder ${cfg.runtimeDir}` : `nothing answers on the control socket ${sock}`;
  const info = readPidfileInfo(cfg.pidfile);
  if (info === undefined || !isAlive(info.pid)) {
    throw new NoMasterError(
      `no baton master is running for ${cfg.file} (${why}; ${info === undefined ? `no pidfile at ${cfg.pidfile}` : `pid ${info.pid} from ${cfg.pidfile} is not running: a stale pidfile, left by a master that was killed`})`,
    );
  }
  return { kind: 'pid', pid: info.pid, proc: trustPidfile(cfg.pidfile, info, owner), why };
}

function trustPidfile(file: string, info: PidfileInfo, dirOwner: number | null): ProcessId {
  const refuse = (why: string) => new UntrustedMasterError(`not trusting pid ${info.pid} from ${file}: ${why}`);
  let folderOwner: number | null;
  try {
    folderOwner = runtimeDirOwner(path.dirname(file));
  } catch (e) {
    throw refuse((e as Error).message.replace(/^not trusting the runtime folder/, 'its folder'));
  }
  const owner = dirOwner ?? folderOwner;
  if (info.uid !== owner && info.uid !== 0) throw refuse(`the pidfile is owned by uid ${info.uid}, not by the master's uid ${owner}`);
  const proc = processInfo(info.pid);
  if (!proc) throw refuse('cannot read /proc for it');
  if (proc.uid !== info.uid) throw refuse(`it runs as uid ${proc.uid}, the pidfile is uid ${info.uid}'s`);
  // a master writes its pidfile after it started; a pid recycled after its death started later
  if (proc.startedAtMs > info.mtimeMs + 1000) throw refuse('it started after the pidfile was written (a recycled pid, not the master)');
  return proc.id;
}

/** Sends a request to the master findMaster found, checking again who answers on this connection. */
export async function askMaster<R extends ControlRequest>(t: SocketTarget, req: R, deadline = Infinity): Promise<{ reply: ReplyTo<R>; pid: number }> {
  const { reply, peer } = await exchange(t.path, req, deadline);
  checkPeer(peer, t.owner, t.path);
  if (reply.ok && 'pid' in reply && reply.pid !== peer.pid) {
    throw new UntrustedMasterError(`the control socket ${t.path} is held by pid ${peer.pid}, which says it is pid ${String(reply.pid)}`);
  }
  return { reply, pid: peer.pid };
}

/**
 * Waits until the process has exited (or its pid is another process's: it has exited too);
 * ClientTimeoutError once `deadline` (Date.now() ms) has passed.
 */
export async function waitForExit(proc: ProcessId | undefined, deadline = Infinity, pollMs = 50): Promise<void> {
  while (proc && stillRunning(proc)) {
    if (Date.now() >= deadline) throw new ClientTimeoutError(`pid ${proc.pid} is still running`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
