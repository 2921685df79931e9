// listeners[]' socket options: config keys (docs/contract.md) that the sockets set and `baton status` reports.

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
