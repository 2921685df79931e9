import net from 'node:net';

// Which of baton's sockets a listen() on a host may take (the Node adapter): a server the app
// meant for some addresses only never serves on a socket bound to others.

const family = (a: string) => (net.isIPv6(a) ? 'ipv6' : 'ipv4');

/** A test for an IP address in one of `subnets` ([address, prefix length]); not for a name. */
function inSubnets(subnets: [string, number][]): (a: string) => boolean {
  const list = new net.BlockList();
  for (const [address, prefix] of subnets) list.addSubnet(address, prefix, family(address));
  return (a) => net.isIP(a) !== 0 && list.check(a, family(a));
}
const isAny = inSubnets([['0.0.0.0', 32], ['::', 128]]);
const isLoopback = inSubnets([['127.0.0.0', 8], ['::1', 128], ['::ffff:127.0.0.0', 104]]);

/**
 * Whether a listen() on `host` may take a socket bound to `address`: any socket when the app
 * names no host or every address (0.0.0.0, ::); for a loopback host (localhost, 127.0.0.0/8,
 * ::1), a socket bound to a loopback address; for another address, a socket bound to that one
 * (a host name other than localhost, none); `address` undefined, a unix socket: any. A server
 * the app meant for this host alone never serves on a socket other hosts reach.
 */
export function hostFits(host: string | undefined, address: string | undefined): boolean {
  if (address === undefined || !host || isAny(host)) return true;
  if (host.toLowerCase() === 'localhost' || isLoopback(host)) return isLoopback(address);
  return inSubnets([[address, family(address) === 'ipv6' ? 128 : 32]])(host);
}
