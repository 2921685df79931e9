'use strict';
// A Node app as people write it, not for any manager: it listens on PORT (or 3000) and handles
// no signal. baton runs it through its Node adapter (workers.adapt), PM2 through Node's cluster
// module; both unchanged. The same 12-byte answer as app/hello.js.
const http = require('node:http');

const body = Buffer.from('hello world\n');
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen(process.env.PORT || 3000);
