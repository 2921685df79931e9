'use strict';
// The example service of `make run`: a Node HTTP server that serves on baton's sockets.
const http = require('node:http');
const { serve } = require('baton/worker');

const started = Date.now();
const server = http.createServer((req, res) => {
  const delay = Number(new URL(req.url, 'http://x').searchParams.get('delay') || 0);
  setTimeout(() => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(
      `hello from worker ${process.env.BATON_WORKER_ID} (pid ${process.pid}, generation ${process.env.BATON_GENERATION}, up ${Date.now() - started} ms)\n`,
    );
  }, Math.min(delay, 60000));
});

serve(server).catch((e) => {
  console.error(e.message);
  process.exit(1);
});
