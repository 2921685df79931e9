'use strict';
// HTTP load from a second process: `node load-client.js PORT KEEPALIVE_CLIENTS FRESH_CLIENTS`.
// Keep-alive clients reuse one connection each (Node's agent); fresh clients open a new
// connection per request. Runs until SIGTERM (or stdin closes, unless LOAD_UNTIL_SIGNAL=1),
// then prints one JSON line:
// { ok, failed, keepalive: {ok, failed}, fresh: {ok, failed}, errors: {code: count} }.
// Bounded: it stops by itself after LOAD_MAX_MS (default 10 min).
const http = require('node:http');

const [port, keepaliveN, freshN] = process.argv.slice(2).map(Number);
const host = process.env.LOAD_HOST || '127.0.0.1';
const stats = { ok: 0, failed: 0, keepalive: { ok: 0, failed: 0 }, fresh: { ok: 0, failed: 0 }, errors: {}, pids: {} };
let running = true;

function once(agent, kind) {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', agent, timeout: 15000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const good = res.statusCode === 200 && body.length > 0;
        count(kind, good, good ? null : `HTTP ${res.statusCode}`);
        if (good) {
          try {
            const pid = JSON.parse(body).pid;
            if (pid) stats.pids[pid] = (stats.pids[pid] || 0) + 1;
          } catch {}
        }
        resolve();
      });
      res.on('error', (e) => (count(kind, false, e.code || e.message), resolve()));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => (count(kind, false, e.code || e.message), resolve()));
  });
}

function count(kind, good, err) {
  stats[good ? 'ok' : 'failed']++;
  stats[kind][good ? 'ok' : 'failed']++;
  if (err) stats.errors[err] = (stats.errors[err] || 0) + 1;
}

async function loop(agent, kind) {
  while (running) await once(agent, kind);
}

const loops = [];
for (let i = 0; i < keepaliveN; i++) loops.push(loop(new http.Agent({ keepAlive: true, maxSockets: 1 }), 'keepalive'));
for (let i = 0; i < freshN; i++) loops.push(loop(false, 'fresh'));

function finish() {
  if (!running) return;
  running = false;
  Promise.all(loops).then(() => {
    process.stdout.write(JSON.stringify(stats) + '\n');
    process.exit(0);
  });
}
process.on('SIGTERM', finish);
if (process.env.LOAD_UNTIL_SIGNAL !== '1') {
  process.stdin.on('end', finish);
  process.stdin.resume();
}
setTimeout(finish, Number(process.env.LOAD_MAX_MS || 600000)).unref();
// a progress line on stderr, so a test can wait until requests flow
const tick = setInterval(() => process.stderr.write(`ok=${stats.ok} failed=${stats.failed}\n`), 200);
tick.unref();
