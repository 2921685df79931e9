'use strict';
// Section 9 (issue 24): what seeing and bounding the workers costs, and what the master's
// memory does across reloads; and the Node adapter against the same app on fd 3 and bare.
//   a. sampling: one sample of N worker process groups, timed in this process; and a master of
//      N workers sampling every second (workers.maxMemory set) against the same master not
//      sampling, its CPU time over the same window;
//   b. the master's RSS across reloads, started as bin/baton (node's flags from its shebang)
//      and as `node bin/baton` (no flags: how it ran before);
//   c. throughput, ABBA: bare workers of app/unmodified-fd3.js, baton running the same, and
//      baton running app/unmodified.js (listen(PORT)) through its Node adapter; servers pinned
//      to one core, then free on both (wrk on its own core in both).
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const { summary, fmt, head } = require('./stats');

const TITLE = '## 9. Issue 24: what sampling, reloads and the Node adapter cost';

const MiB = (kib) => kib / 1024;

async function samplingCost({ cfg, hub, ports, log }) {
  const { sampleGroups } = require('../../dist/system/proc-sample');
  const { Baton } = require('./peers');
  const { sleep, cpuMs } = require('./sys');
  const out = [];
  for (const n of cfg.resourceWorkers) {
    // a. one sample, in this process: N groups of `sh` and its `sleep` (an `npm start`-like pair)
    const kids = Array.from({ length: n }, () => spawn('sh', ['-c', 'sleep 1000; :'], { detached: true, stdio: 'ignore' }));
    const pgids = kids.map((k) => k.pid);
    const ms = [];
    let processes = 0;
    try {
      for (let i = 0; i < 200 && processes < 2 * n; i++) {
        processes = [...sampleGroups(pgids).values()].reduce((a, g) => a + g.processes, 0);
        await sleep(20);
      }
      for (let i = 0; i < 20; i++) sampleGroups(pgids);
      for (let i = 0; i < cfg.resourceSamples; i++) {
        const t = performance.now();
        sampleGroups(pgids);
        ms.push(performance.now() - t);
      }
    } finally {
      for (const k of kids) {
        try {
          process.kill(-k.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // b. a master of N `sleep` workers, sampling every second, against the same not sampling
    const masterCpuMs = {};
    for (const sampling of [false, true]) {
      const more = { ready: 'spawn', ...(sampling ? { maxMemory: '1G', sampleIntervalMs: 1000 } : {}) };
      const b = new Baton({ port: ports(), hub, workers: n, command: ['sleep', '100000'], more });
      await b.start();
      try {
        await sleep(2000);
        const c0 = cpuMs(b.pid);
        await sleep(cfg.resourceWindowS * 1000);
        masterCpuMs[sampling ? 'on' : 'off'] = cpuMs(b.pid) - c0;
      } finally {
        await b.stop();
      }
    }
    out.push({ workers: n, processes, sampleMs: ms, masterCpuMs, windowS: cfg.resourceWindowS });
    log(`sampling ${n} workers: one sample ${summary(ms).median.toFixed(2)} ms; master CPU over ${cfg.resourceWindowS} s: ${masterCpuMs.off} ms not sampling, ${masterCpuMs.on} ms sampling every second`);
  }
  return out;
}

async function reloadsRss({ cfg, hub, ports, log }) {
  const { Baton } = require('./peers');
  const { sleep, rssKiB } = require('./sys');
  const out = [];
  for (const [key, nodeArgs] of [['bin/baton', undefined], ['node bin/baton', []]]) {
    const b = new Baton({ port: ports(), hub, workers: 1, nodeArgs });
    await b.start();
    const rss = [];
    try {
      await sleep(1000);
      rss.push({ after: 0, kib: rssKiB(b.pid) });
      for (let i = 1; i <= cfg.resourceReloads; i++) {
        await b.reload();
        if (i % Math.max(1, Math.round(cfg.resourceReloads / 10)) === 0) {
          await sleep(500);
          rss.push({ after: i, kib: rssKiB(b.pid) });
        }
      }
      await sleep(10000);
      rss.push({ after: cfg.resourceReloads, settled: true, kib: rssKiB(b.pid) });
    } finally {
      await b.stop();
    }
    out.push({ launcher: key, rss });
    log(`reloads, ${key}: rss ${rss.map((s) => s.kib)}`);
  }
  return out;
}

const PEERS = [
  { key: 'bare', label: 'bare workers, the app on fd 3' },
  { key: 'fd3', label: 'baton, the app on fd 3' },
  { key: 'adapter', label: 'baton, the unmodified app (adapter)' },
];

async function throughput({ cfg, hub, ports, log, measure, modes }) {
  const { Bare, Baton, UNMODIFIED, UNMODIFIED_FD3, SERVER_CPU } = require('./peers');
  const out = [];
  for (const cpus of [SERVER_CPU, '0,1']) {
    const make = {
      bare: () => new Bare({ port: ports(), hub, script: UNMODIFIED_FD3, cpus }),
      fd3: () => new Baton({ port: ports(), hub, command: ['node', UNMODIFIED_FD3], more: { adapt: 'off' }, cpus }),
      adapter: () => new Baton({ port: ports(), hub, command: ['node', UNMODIFIED], cpus }),
    };
    const peers = PEERS.map((p) => Object.assign(make[p.key](), { key: p.key }));
    for (const p of peers) await p.start();
    try {
      for (let round = 1; round <= cfg.resourceRounds; round++) {
        for (const mode of modes) {
          for (const p of round % 2 ? peers : [...peers].reverse()) {
            await measure(p.port, mode.fresh, cfg.warmupSeconds);
            const s = await measure(p.port, mode.fresh, cfg.seconds);
            out.push({ cpus, round, mode: mode.key, peer: p.key, rps: s.rps, failed: s.failed });
            log(`adapter cost, servers on ${cpus}, round ${round} ${mode.key} ${p.key}: ${Math.round(s.rps)} req/s`);
          }
        }
      }
    } finally {
      for (const p of peers) await p.stop();
    }
  }
  return out;
}

async function run(ctx) {
  return { sampling: await samplingCost(ctx), reloads: await reloadsRss(ctx), throughput: await throughput(ctx) };
}

/** Per round, a/b from the same round; median (min–max). */
function ratios(xs, a, b, where) {
  const rounds = [...new Set(xs.filter(where).map((v) => v.round))];
  return summary(
    rounds.map((round) => {
      const get = (peer) => xs.find((v) => where(v) && v.round === round && v.peer === peer)?.rps;
      return get(a) / get(b);
    }),
  );
}

function render(r) {
  const s = r.resources;
  const run = r.resourcesRun || r;
  const c = run.cfg;
  const sampling = s.sampling.map((x) => {
    const per = (x.masterCpuMs.on - x.masterCpuMs.off) / x.windowS;
    return `| ${x.workers} | ${x.processes} | ${fmt(summary(x.sampleMs), 2)} | ${x.masterCpuMs.off} / ${x.masterCpuMs.on} | ${(per / 10).toFixed(2)} % | ${(per / 50).toFixed(3)} % |`;
  });
  const after = s.reloads[0].rss.filter((v) => !v.settled).map((v) => v.after.toLocaleString('en-US'));
  const rssRows = s.reloads.map((x) => {
    const live = x.rss.filter((v) => !v.settled);
    const settled = x.rss.find((v) => v.settled);
    return `| \`${x.launcher}\` | ${live.map((v) => MiB(v.kib).toFixed(1)).join(', ')} | ${MiB(Math.max(...live.map((v) => v.kib))).toFixed(1)} | ${settled ? MiB(settled.kib).toFixed(1) : '–'} |`;
  });
  const tp = [];
  const goalLines = [];
  for (const cpus of [...new Set(s.throughput.map((v) => v.cpus))]) {
    for (const mode of ['keepalive', 'fresh']) {
      const where = (v) => v.cpus === cpus && v.mode === mode;
      const rps = (peer) => fmt(summary(s.throughput.filter((v) => where(v) && v.peer === peer).map((v) => v.rps)), 0);
      const fd3Bare = ratios(s.throughput, 'fd3', 'bare', where);
      const adapterFd3 = ratios(s.throughput, 'adapter', 'fd3', where);
      const adapterBare = ratios(s.throughput, 'adapter', 'bare', where);
      const label = `${cpus === '0,1' ? 'free on both cores' : `pinned to CPU ${cpus}`} | ${mode === 'keepalive' ? 'keep-alive' : 'new connection per request'}`;
      tp.push(`| ${label} | ${rps('bare')} | ${rps('fd3')} | ${rps('adapter')} | ${fmt(fd3Bare, 3)} | ${fmt(adapterFd3, 3)} | ${fmt(adapterBare, 3)} |`);
      goalLines.push(`${label.replace(' | ', ', ')}: the adapter's cost ${((1 - adapterFd3.median) * 100).toFixed(1)} % (goal ≤ 2 %: ${adapterFd3.median >= 0.98 ? 'met' : '**not met**'}); baton ${fd3Bare.median.toFixed(3)} × bare (goal ≥ 0.97: ${fd3Bare.median >= 0.97 ? 'met' : '**not met**'})`);
    }
  }
  const failed = s.throughput.reduce((a, v) => a + v.failed, 0);
  return [
    TITLE,
    '',
    `Run ${run.date.slice(0, 10)}${run.quick ? ' (QUICK pass)' : ''} on baton ${run.machine?.baton ?? ''}. Figures: median (min–max).`,
    '',
    `**a. Sampling** (\`workers.maxMemory\`, \`baton status\` and \`baton top\` read \`/proc\`): one sample of N worker process groups (each an \`sh\` and its \`sleep\`, as \`npm start\` and node), ${c.resourceSamples} samples timed in the harness (every process's \`stat\` on the machine is read: the process groups are found that way); then a master of N \`sleep\` workers over ${c.resourceWindowS} s, sampling every second (\`maxMemory\` set, \`sampleIntervalMs: 1000\`) and not sampling: its CPU time (10 ms ticks). Goal: sampling 64 workers costs ≤ 1 % of one core.`,
    '',
    ...head('workers', 'processes sampled', 'one sample, ms', 'master CPU ms, not sampling / sampling every second', 'share of one core, a sample every second', 'at the default interval (5 s)'),
    ...sampling,
    '',
    `**b. The master's RSS across ${c.resourceReloads.toLocaleString('en-US')} reloads** (1 worker of \`app/hello.js\`, each HUP waiting for the master's READY=1; RSS 500 ms after every ${Math.round(c.resourceReloads / 10)}th, and once more 10 s after the last). \`bin/baton\` starts node with its shebang's flags (\`--lite-mode --no-expose-wasm --expose-gc\`: V8 without its optimising compilers and with a small young generation; the master collects garbage a second after workers exit), as \`/usr/bin/baton\` does; \`node bin/baton\` without them is how the master ran before. Goal: ≤ 48 MiB after 1,000 reloads.`,
    '',
    ...head('started as', `RSS MiB after ${after.join(', ')} reloads`, 'largest', '10 s after the last'),
    ...rssRows,
    '',
    `**c. The Node adapter's cost**: \`app/unmodified.js\` (\`listen(PORT)\`, run through the adapter) against the same server on fd 3 (\`app/unmodified-fd3.js\`, \`adapt: "off"\`) under baton, and bare workers of the fd 3 app on a socket the harness holds; 2 workers each. ${c.resourceRounds} rounds of ${c.seconds} s per peer after a ${c.warmupSeconds} s warm-up, the order reversed every other round (ABBA); wrk \`-t1 -c${c.connections}\` on CPU ${c.loadCpu}, the servers pinned to CPU ${c.serverCpu}, then free on both cores. Ratios: each from one round. Failed requests: ${failed}.`,
    '',
    ...head('servers', 'connections', 'bare req/s', 'baton, fd 3', 'baton, adapter', 'baton fd 3 / bare', 'adapter / fd 3', 'adapter / bare'),
    ...tp,
    '',
    ...goalLines.map((l) => `- ${l}`),
  ];
}

module.exports = { run, render, TITLE };
