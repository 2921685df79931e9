'use strict';
// The Node `cluster` peer: a primary that forks COUNT workers of hello.js (default
// scheduling, round-robin on Linux: the primary accepts and passes each connection on).
// SIGTERM/SIGINT: stop the workers gracefully (they drain), then exit.
const cluster = require('node:cluster');
const path = require('node:path');

const count = Number(process.env.COUNT || 2);
cluster.setupPrimary({ exec: path.join(__dirname, 'hello.js') });
let stopping = false;
for (let i = 0; i < count; i++) cluster.fork();
cluster.on('exit', (w, code, sig) => {
  if (stopping) {
    if (Object.keys(cluster.workers).length === 0) process.exit(0);
    return;
  }
  console.error(`cluster: worker ${w.process.pid} exited (${sig || code}); forking another`);
  cluster.fork();
});
const stop = () => {
  if (stopping) return;
  stopping = true;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  if (Object.keys(cluster.workers).length === 0) process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
