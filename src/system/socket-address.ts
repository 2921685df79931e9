/** A socket's address as getsockname(2) gives it (native's SockInfo), as baton writes it: in status and in what it says of a socket. */
export function formatSockAddr(info: { family: string; address?: string; port?: number; path?: string }): string {
  if (info.family === 'unix') return info.path || '(unnamed unix socket)';
  if (info.family === 'inet6') return `[${info.address}]:${info.port}`;
  if (info.family === 'inet') return `${info.address}:${info.port}`;
  return `(${info.family} socket)`;
}
