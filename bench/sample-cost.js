'use strict';
// What one status costs in sampling (issue 24): sampleGroups over N worker process groups, each
// `sh -c 'sleep 1000; :'` (sh and a child: an `npm start`-like pair), timed in this process.
// Needs `make build` (dist/). Prints, per N, the median and p95 time of one sample, and what
// sampling every 2 s (`baton top`) and every 5 s (workers.sampleIntervalMs's default) costs of
// one core. Knobs: SAMPLE_WORKERS (default 1,8,64), SAMPLE_ROUNDS (default 200).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const { sampleGroups } = require('../dist/system/proc-sample');

const counts = (process.env.SAMPLE_WORKERS || '1,8,64').split(',').map(Number);
const rounds = Number(process.env.SAMPLE_ROUNDS || 200);

async function main() {
  const procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
  console.log(`sampleGroups: ${rounds} samples per row; ${procs} processes on this machine (every one's stat is read)`);
  console.log('workers  processes  median ms  p95 ms  every 2 s  every 5 s');
  for (const n of counts) {
    const kids = Array.from({ length: n }, () => spawn('sh', ['-c', 'sleep 1000; :'], { detached: true, stdio: 'ignore' }));
    const pgids = kids.map((k) => k.pid);
    try {
      for (let i = 0; i < 200; i++) {
        const s = sampleGroups(pgids);
        if ([...s.values()].reduce((a, g) => a + g.processes, 0) === 2 * n) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let i = 0; i < 20; i++) sampleGroups(pgids);
      const ms = [];
      for (let i = 0; i < rounds; i++) {
        const t = performance.now();
        sampleGroups(pgids);
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      const med = ms[Math.floor(ms.length / 2)];
      const p95 = ms[Math.floor(ms.length * 0.95)];
      const total = [...sampleGroups(pgids).values()].reduce((a, g) => a + g.processes, 0);
      console.log(`${String(n).padEnd(9)}${String(total).padEnd(11)}${med.toFixed(2).padEnd(11)}${p95.toFixed(2).padEnd(8)}${((med / 2000) * 100).toFixed(3).padEnd(11)}${((med / 5000) * 100).toFixed(3)}`);
    } finally {
      for (const k of kids) {
        try {
          process.kill(-k.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
