'use strict';
// Small readers of /proc and waiting helpers for the benchmark harness.
const fs = require('node:fs');
const http = require('node:http');
const { execFileSync } = require('node:child_process');

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 30000, everyMs = 5) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Fields of /proc/PID/stat after the command name; undefined once the process is gone. */
function stat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Running or sleeping: a zombie counts as gone (it only waits for its parent to reap it). */
function alive(pid) {
  const f = stat(pid);
  return f !== undefined && f[0] !== 'Z';
}

/** User + system CPU time the process itself used so far, in ms. */
function cpuMs(pid) {
  const f = stat(pid);
  if (!f) return NaN;
  // after the name: state(0) ppid(1) ... utime(11) stime(12)
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function childrenOf(pid) {
  const out = [];
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const c = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (c) out.push(...c.split(' ').map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

function descendantsOf(pid) {
  const all = [];
  const todo = [pid];
  while (todo.length) {
    for (const c of childrenOf(todo.pop())) {
      all.push(c);
      todo.push(c);
    }
  }
  return all;
}

/** One GET; resolves to the status code, or 0 when the request failed. */
function get(port, path = '/') {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

const serving = (port, timeoutMs = 30000) => waitFor(`an answer on 127.0.0.1:${port}`, async () => (await get(port)) === 200, timeoutMs, 10);

module.exports = { CLK_TCK, sleep, waitFor, stat, alive, cpuMs, rssKiB, childrenOf, descendantsOf, get, serving };
