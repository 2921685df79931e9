// Typed access to the C addon (baton_native.c). The .node file is copied to dist/native/
// by `make build`; in a checkout run by ts-jest it is found in node-gyp's folder.
import fs from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';

export interface SockInfo {
  /** SO_TYPE */
  type: 'stream' | 'dgram' | 'seqpacket' | 'other';
  /** SO_DOMAIN */
  family: 'inet' | 'inet6' | 'unix' | 'other';
  /** SO_ACCEPTCONN: listen() was called on it. */
  listening: boolean;
  /** It has a peer (getpeername succeeds): a connection, not a listener. */
  connected: boolean;
  cloexec: boolean;
  address?: string;
  port?: number;
  path?: string;
}

export interface NotifyMessage {
  data: Buffer;
  /** Sender's pid from SCM_CREDENTIALS, -1 when the kernel gave none. */
  pid: number;
  uid: number;
  gid: number;
  /** File descriptors the sender attached (handed to the addon's closer thread, never closed on the loop). */
  fds: number;
  /** Longer than 4096 bytes (MSG_TRUNC): `data` is then empty, as none of it may be acted on. */
  truncated: boolean;
}

export interface NotifyReceiverHandle {
  fd: number;
  close(): void;
  unref(): void;
  /** How many times reading paused because the closer thread was behind (a received fd whose close blocks). */
  pauses(): number;
}

/** The socket options the addon knows by name (setsockopt(2) levels and numbers stay in C). */
export type SockOptName =
  | 'SO_KEEPALIVE' | 'SO_RCVBUF' | 'SO_RCVBUFFORCE' | 'SO_SNDBUF' | 'SO_SNDBUFFORCE' | 'SO_MARK' | 'SO_PRIORITY' | 'SO_BINDTODEVICE'
  | 'TCP_NODELAY' | 'TCP_KEEPIDLE' | 'TCP_KEEPINTVL' | 'TCP_KEEPCNT' | 'TCP_DEFER_ACCEPT' | 'TCP_CONGESTION'
  | 'IP_TOS' | 'IP_FREEBIND' | 'IP_TRANSPARENT' | 'IPV6_V6ONLY' | 'IPV6_FREEBIND' | 'IPV6_TRANSPARENT';

interface Native {
  /**
   * family 0: a unix socket whose file bind() creates with exactly `mode` (no chmod
   * afterwards), given to `owner` ([uid, gid], -1 unchanged) through an O_NOFOLLOW fd before
   * listen(). `prepare(fd)` runs between socket() and bind(): socket options.
   */
  listenSocket(family: 0 | 4 | 6, address: string, port: number, backlog: number, mode: number, prepare?: (fd: number) => void, owner?: [number, number]): number;
  /** SO_BINDTODEVICE and TCP_CONGESTION take a string, the others a number. */
  setSockOpt(fd: number, name: SockOptName, value: number | string): void;
  getSockOpt(fd: number, name: SockOptName): number | string;
  /** A new unbound stream socket (close-on-exec): the kernel's defaults, a place to try options. */
  streamSocket(family: 0 | 4 | 6): number;
  sockInfo(fd: number): SockInfo;
  setCloexec(fd: number, on: boolean): void;
  /** fcntl(F_DUPFD_CLOEXEC): another fd for the same socket. */
  dupCloexec(fd: number): number;
  /** One datagram; `fds` go along as SCM_RIGHTS (sd_pid_notify_with_fds). Never blocks: a full receiver queue throws EAGAIN. */
  notifySend(socketPath: string, data: Buffer, fds?: number[]): void;
  notifyBind(socketPath: string, onMessage: (m: NotifyMessage) => void): NotifyReceiverHandle;
  /** send(fd, data, MSG_DONTWAIT | MSG_NOSIGNAL): bytes sent; a full socket throws EAGAIN, with no fcntl on the fd. */
  sendNoWait(fd: number, data: Buffer): number;
  /** SO_PEERCRED of a connected unix socket: who is at the other end, as the kernel says. */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** The other end of a connected unix stream socket has closed (POLLHUP): nothing written will be read. */
  peerGone(fd: number): boolean;
  /** sysconf(_SC_ARG_MAX): a quarter of the stack limit (ulimit -s) as glibc reads it; -1 if unknown. */
  argMax(): number;
  /** `n` (at most 256) bytes from getrandom(2). */
  randomBytes(n: number): Buffer;
}

/** Where `make build` puts a file of dist/native/, seen from here. */
function builtFile(file: string): string[] {
  return [
    path.join(__dirname, file), // dist/native/ (tsc)
    path.join(__dirname, '..', 'native', file), // dist/bundle/ (esbuild's bundles)
    path.join(__dirname, 'build', 'Release', file), // src/native/ (ts-jest)
  ];
}

function load(): Native {
  let firstError: unknown;
  for (const c of builtFile('baton_native.node')) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(c) as Native;
    } catch (e) {
      firstError ??= e;
    }
  }
  throw new Error(`baton's native addon is missing (run 'make build'): ${(firstError as Error).message}`);
}

export const native: Native = load();

/** The fd under a connected net.Socket, which Node does not expose, for the addon's calls. */
export function socketFd(s: Socket): number {
  return (s as unknown as { _handle: { fd: number } })._handle.fd;
}

/** The signal guard (signal_guard.c), a shared object for LD_PRELOAD; undefined if it was not built. */
export const signalGuardFile: string | undefined = builtFile('baton_signal_guard.node').find((f) => fs.existsSync(f));
