'use strict';
// app/unmodified.js as it would be written for baton without the adapter: the same server on
// fd 3 (the socket baton or "bare" hands over), READY=1 once it listens. Section 9 measures the
// adapter's cost against it.
const http = require('node:http');
const path = require('node:path');
const { notify } = require(path.join(__dirname, '../../dist/serve/index.js'));

const body = Buffer.from('hello world\n');
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen({ fd: 3 }, () => notify({ READY: 1 }));
