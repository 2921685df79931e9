import net from 'node:net';
import type { ListenerSpec } from './types';

/**
 * Parses a `tcp` listener value: "127.0.0.1:8080", "[::1]:8080", "*:8080" or "8080"
 * (every address, IPv4 and IPv6), "localhost:8080". Returns an error string when invalid.
 */
export function parseTcp(text: string): ListenerSpec | string {
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]*)\]:(\d+)$/.exec(text);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (/^\d+$/.test(text)) {
    host = '*';
    portText = text;
  } else {
    const i = text.lastIndexOf(':');
    if (i < 0) return `'${text}' is not ADDRESS:PORT`;
    host = text.slice(0, i);
    portText = text.slice(i + 1);
    if (host.includes(':')) return `'${text}': write an IPv6 address in brackets, as [${host}]:${portText}`;
  }
  if (!/^\d+$/.test(portText)) return `'${text}': port '${portText}' is not a number`;
  const port = Number(portText);
  if (port > 65535) return `'${text}': port ${port} is out of range (0-65535)`;
  if (host === '*' || host === '') return { kind: 'tcp', host: '::', family: 6, port, text };
  if (host === 'localhost') return { kind: 'tcp', host: '127.0.0.1', family: 4, port, text };
  const fam = net.isIP(host);
  if (fam === 0) return `'${text}': '${host}' is not an IP address (host names are not resolved)`;
  return { kind: 'tcp', host, family: fam as 4 | 6, port, text };
}
