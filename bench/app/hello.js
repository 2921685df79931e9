'use strict';
// The one hello-world HTTP worker that every peer runs, unchanged.
//
// It listens through baton/worker's serve(): on inherited sockets when LISTEN_FDS is set
// (baton, and "bare"), otherwise on PORT, which Node cluster and PM2 cluster mode intercept
// and share. serve() also gives every peer the same graceful stop on SIGTERM/SIGINT (close the
// listener, answer each keep-alive connection's next request with `Connection: close`), so a
// difference in failed requests is the manager's, not the worker's.
const http = require('node:http');
const path = require('node:path');
const { serve } = require(path.join(__dirname, '../../dist/serve/index.js'));

const body = Buffer.from('hello world\n');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});

serve(server, {
  fallback: process.env.PORT ? { port: Number(process.env.PORT), host: '127.0.0.1' } : undefined,
  log: () => undefined,
}).catch((e) => {
  console.error(`hello: ${e.message}`);
  process.exit(1);
});
