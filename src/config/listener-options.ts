import { parseTcp } from './tcp-address';
import { keysOf, type OptionKey, type SocketOptions } from '../contract/socket-options';
import { bytes } from './size';

/** A listeners[] entry as the schema lets it through. */
export interface RawListener extends Omit<SocketOptions, 'receiveBuffer' | 'sendBuffer' | 'ipTOS'> {
  name: string;
  tcp?: string;
  unix?: string;
  mode?: string;
  backlog?: number;
  user?: string | number;
  group?: string | number;
  receiveBuffer?: number | string;
  sendBuffer?: number | string;
  ipTOS?: number | keyof typeof TOS;
}

// IPTOS_* of <netinet/ip.h>, the names systemd's IPTOS= takes
const TOS = { 'low-delay': 0x10, throughput: 0x08, reliability: 0x04, 'low-cost': 0x02 };
/** What SO_RCVBUF/SO_SNDBUF take: the kernel caps the value at INT_MAX / 2 before doubling it. */
const MAX_BUFFER = 0x3fffffff;
const OPTION_KEYS = keysOf(6);
const UNIX_KEYS = new Set<OptionKey>(keysOf(0));

/** The options of one listener, in config terms; noDelay is true for tcp unless set. */
export function resolveSocketOptions(l: RawListener): SocketOptions {
  const out: Record<string, unknown> = {};
  for (const k of OPTION_KEYS) if (l[k] !== undefined) out[k] = l[k];
  if (l.receiveBuffer !== undefined) out.receiveBuffer = bytes(l.receiveBuffer);
  if (l.sendBuffer !== undefined) out.sendBuffer = bytes(l.sendBuffer);
  if (typeof l.ipTOS === 'string') out.ipTOS = TOS[l.ipTOS];
  if (l.tcp !== undefined) out.noDelay ??= true;
  return out as SocketOptions;
}

/** Options on a listener they do not apply to, and sizes past what the kernel takes. */
export function listenerOptionProblems(l: RawListener, at: string): string[] {
  const out: string[] = [];
  const given = OPTION_KEYS.filter((k) => l[k] !== undefined);
  for (const k of given) {
    if (l.tcp === undefined && l.unix === undefined) {
      out.push(`${at}/${k}: only applies to a socket baton binds (give tcp or unix); a socket from systemd is used as its .socket unit made it`);
    } else if (l.unix !== undefined && !UNIX_KEYS.has(k)) {
      out.push(`${at}/${k}: only applies to a tcp listener`);
    }
  }
  for (const k of ['user', 'group'] as const) {
    if (l[k] !== undefined && l.unix === undefined) out.push(`${at}/${k}: only applies to a unix listener (the socket file's owner)`);
  }
  if (l.bindIPv6Only !== undefined && l.tcp !== undefined) {
    const spec = parseTcp(l.tcp);
    if (typeof spec !== 'string' && spec.kind === 'tcp' && spec.family === 4) {
      out.push(`${at}/bindIPv6Only: only applies to an IPv6 address ([::]:PORT, *:PORT or PORT), not ${l.tcp}`);
    }
  }
  for (const k of ['receiveBuffer', 'sendBuffer'] as const) {
    const v = l[k];
    if (v !== undefined && (bytes(v) < 1 || bytes(v) > MAX_BUFFER)) out.push(`${at}/${k}: '${v}' is ${bytes(v)} bytes; it must be from 1 to ${MAX_BUFFER} (INT_MAX / 2, what the kernel takes)`);
  }
  return out;
}
