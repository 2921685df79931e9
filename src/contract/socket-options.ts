// listeners[]' socket options: config keys (docs/contract.md) that the sockets set and `baton status` reports.
import type { SockOptName } from '../native';

/** The systemd.socket(5) options of stream sockets, as listeners[] spells them; undefined: the kernel's default. */
export interface SocketOptions {
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveTimeSec?: number;
  keepAliveIntervalSec?: number;
  keepAliveProbes?: number;
  deferAcceptSec?: number;
  freeBind?: boolean;
  transparent?: boolean;
  bindIPv6Only?: 'default' | 'both' | 'ipv6-only';
  bindToDevice?: string;
  /** Bytes (K, M, G suffixes resolved). */
  receiveBuffer?: number;
  sendBuffer?: number;
  mark?: number;
  /** 0-255 (low-delay, throughput, reliability, low-cost resolved). */
  ipTOS?: number;
  tcpCongestion?: string;
  priority?: number;
}

/** 4, 6: TCP over IPv4 or IPv6; 0: unix. */
export type Family = 0 | 4 | 6;
export type OptionKey = keyof SocketOptions;

export interface OptionDef {
  key: OptionKey;
  /** Acts only when the socket is bound: a socket held already cannot take another value. */
  atBind?: boolean;
  /** The option for this family; undefined: not one of its options. */
  name(family: Family): SockOptName | undefined;
  /** Config value to setsockopt()'s; undefined: leave the kernel's default. */
  toKernel?(v: unknown): number | string | undefined;
  fromKernel?(v: number | string): SocketOptions[OptionKey];
}

const bool = { toKernel: (v: unknown) => (v ? 1 : 0), fromKernel: (v: number | string) => v !== 0 };
const ip = (v4: SockOptName, v6: SockOptName) => (f: Family) => (f === 4 ? v4 : f === 6 ? v6 : undefined);
const tcp = (n: SockOptName) => (f: Family) => (f === 0 ? undefined : n);
const every = (n: SockOptName) => () => n;

/**
 * Each option as the kernel knows it: the config (which keys a listener may give) and the
 * sockets (setting and reading them) read the same table. In the order they are set: what acts
 * at bind() first, as systemd's socket_address_listen() does; IP_TOS before SO_PRIORITY,
 * because setting IP_TOS also sets the priority (ip(7)).
 */
export const OPTION_DEFS: readonly OptionDef[] = [
  {
    key: 'bindIPv6Only',
    atBind: true,
    name: (f) => (f === 6 ? 'IPV6_V6ONLY' : undefined),
    toKernel: (v) => (v === 'default' ? undefined : v === 'ipv6-only' ? 1 : 0),
    fromKernel: (v) => (v ? 'ipv6-only' : 'both'),
  },
  { key: 'bindToDevice', atBind: true, name: tcp('SO_BINDTODEVICE') },
  { key: 'freeBind', atBind: true, name: ip('IP_FREEBIND', 'IPV6_FREEBIND'), ...bool },
  { key: 'transparent', atBind: true, name: ip('IP_TRANSPARENT', 'IPV6_TRANSPARENT'), ...bool },
  { key: 'noDelay', name: tcp('TCP_NODELAY'), ...bool },
  { key: 'keepAlive', name: tcp('SO_KEEPALIVE'), ...bool },
  { key: 'keepAliveTimeSec', name: tcp('TCP_KEEPIDLE') },
  { key: 'keepAliveIntervalSec', name: tcp('TCP_KEEPINTVL') },
  { key: 'keepAliveProbes', name: tcp('TCP_KEEPCNT') },
  { key: 'deferAcceptSec', name: tcp('TCP_DEFER_ACCEPT') },
  { key: 'receiveBuffer', name: every('SO_RCVBUF') },
  { key: 'sendBuffer', name: every('SO_SNDBUF') },
  { key: 'mark', name: tcp('SO_MARK') },
  { key: 'ipTOS', name: tcp('IP_TOS') },
  { key: 'tcpCongestion', name: tcp('TCP_CONGESTION') },
  { key: 'priority', name: tcp('SO_PRIORITY') },
];

/** The keys a socket of `family` has (a unix one: the buffer sizes). */
export function keysOf(family: Family): OptionKey[] {
  return OPTION_DEFS.filter((d) => d.name(family) !== undefined).map((d) => d.key);
}
