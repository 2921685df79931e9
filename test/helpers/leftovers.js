'use strict';
// The safety net: no test may leave a process behind. Every process below the run (jest's
// own children, and what make test's subreaper adopted: a double-forked successor master,
// a worker's orphaned child) is a leftover once a test file has finished. They get a
// grace to finish exiting, then are named, SIGKILLed (with their process groups) and fail
// the file that left them — a leftover must not hold jest's pipes and hang `make test`.
const fs = require('node:fs');

function table() {
  const procs = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
      procs.set(Number(d), { pid: Number(d), state: rest[0], ppid: Number(rest[1]), pgid: Number(rest[2]), cmd });
    } catch {
      /* exited meanwhile */
    }
  }
  return procs;
}

/** Live processes below the run's root, except jest itself and the processes above it. */
function leftovers() {
  const procs = table();
  const reaper = Number(process.env.BATON_TEST_REAPER);
  const root = reaper && procs.has(reaper) ? reaper : process.pid;
  const mine = new Set();
  for (let p = process.pid; p > 1 && procs.has(p); p = procs.get(p).ppid) mine.add(p);
  const out = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    for (const c of procs.values()) {
      if (c.ppid !== p) continue;
      todo.push(c.pid);
      if (!mine.has(c.pid) && c.state !== 'Z') out.push(c);
    }
  }
  // a leftover may share a process group with jest and the shells above it: that group is
  // not the leftover's to lose
  const safeGroups = new Set([...mine].map((p) => procs.get(p).pgid));
  return out.map((c) => ({ ...c, ownGroup: !safeGroups.has(c.pgid) }));
}

async function killLeftovers(graceMs) {
  const until = Date.now() + graceMs;
  let left = leftovers();
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    left = leftovers();
  }
  for (const p of left) {
    for (const target of p.ownGroup ? [p.pid, -p.pgid] : [p.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  return left.map((p) => `pid ${p.pid} (group ${p.pgid}): ${p.cmd.slice(0, 200)}`);
}

module.exports = { leftovers, killLeftovers };
