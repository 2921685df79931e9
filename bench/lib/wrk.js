'use strict';
// wrk, pinned to CPU 1 with one thread, so the load generator can take at most one of the two
// cores; the servers under test are pinned to the other (see SERVER_CPU in peers.js).
const { spawn } = require('node:child_process');
const path = require('node:path');
const { sleep } = require('./sys');

const LOAD_CPU = process.env.BENCH_LOAD_CPU || '1';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 50);

/**
 * Starts wrk against 127.0.0.1:port. `fresh` sends `Connection: close`, so every request
 * opens a new connection. stop() ends it (SIGINT: wrk prints its summary) and resolves to
 * the parsed JSON line of app/report.lua; done resolves the same when `seconds` run out.
 */
function startWrk({ port, fresh, seconds = 3600, connections = CONNECTIONS }) {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', path.join(__dirname, '../app/report.lua')];
  if (fresh) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/`);
  const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code, sig) => {
      const line = out.trim().split('\n').pop();
      try {
        const r = JSON.parse(line);
        r.failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
        r.rps = r.requests / (r.duration_us / 1e6);
        resolve(r);
      } catch {
        reject(new Error(`wrk exited ${sig || code} without a summary: ${err.trim() || out.trim()}`));
      }
    });
  });
  return {
    pid: child.pid,
    done,
    stop() {
      child.kill('SIGINT');
      return done;
    },
  };
}

/**
 * `count` actions (`act()`, each resolving to how long it took), `pauseMs` apart, under wrk
 * from 500 ms before the first to 500 ms after the last. Resolves to wrk's result and the times.
 */
async function actionsUnderLoad({ port, fresh, count, pauseMs, act }) {
  const w = startWrk({ port, fresh });
  const times = [];
  let failure;
  try {
    await sleep(500);
    for (let i = 0; i < count; i++) {
      times.push(await act());
      await sleep(pauseMs);
    }
    await sleep(500);
  } catch (e) {
    failure = e;
  }
  const r = await w.stop();
  if (failure) throw failure;
  return { r, times };
}

module.exports = { startWrk, actionsUnderLoad, LOAD_CPU, CONNECTIONS };
