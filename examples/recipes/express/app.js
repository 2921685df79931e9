'use strict';
// An Express app under baton: Express builds the request handler, Node's http.Server serves
// it, and baton/worker's serve() puts that server on baton's sockets (fd 3..), says READY=1
// and stops it gracefully on SIGTERM. Nothing else is baton-specific.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { serve } = require('baton/worker');

const app = express();
app.get('/', (req, res) => {
  res.type('text/plain').send(`hello from express, worker ${process.env.BATON_WORKER_ID} (pid ${process.pid})\n`);
});
// Data goes in the folder systemd makes for the service: StateDirectory= in a drop-in sets
// STATE_DIRECTORY (docs/deploying.md); everything else is read-only (ProtectSystem=strict).
app.post('/visits', (req, res) => {
  const dir = process.env.STATE_DIRECTORY;
  if (!dir) return res.status(500).type('text/plain').send('no STATE_DIRECTORY: add StateDirectory= to the service\n');
  fs.appendFile(path.join(dir, 'visits.log'), `${new Date().toISOString()}\n`, (err) => {
    if (err) res.status(500).type('text/plain').send(`${err.message}\n`);
    else res.type('text/plain').send(`recorded in ${dir}\n`);
  });
});

// fallback: `node app.js` outside baton listens on port 3000, for development
serve(http.createServer(app), { fallback: { port: 3000 } }).catch((e) => {
  console.error(e.message);
  process.exit(1);
});
