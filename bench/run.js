'use strict';
// make bench: baton beside bare workers, Node cluster and PM2 on the same app/hello.js, all in
// one run on this machine. Writes bench/results.json (every sample), bench/results.md and the
// charts, and the README's benchmark section. Run it through `make bench`, which installs wrk
// and PM2 (into bench/node_modules only) and runs this under a subreaper.
//
// Knobs (environment): BENCH_QUICK=1 for a short pass that checks the harness (written to
// build/bench-quick/ only); BENCH_ROUNDS, BENCH_SECONDS (throughput), BENCH_RELOADS,
// BENCH_RELOAD_ROUNDS (reloads under load), BENCH_TIMING_ROUNDS, BENCH_SCALE_WORKERS,
// BENCH_SCALE_LISTENERS, BENCH_SCALE_ROUNDS, BENCH_NODELAY_ROUNDS; BENCH_GOAL_ROUNDS,
// BENCH_GOAL_LOAD_UPGRADES, BENCH_GOAL_RELOADS, BENCH_GOAL_UPGRADES (section 7); BENCH_SERVER_CPU,
// BENCH_LOAD_CPU, BENCH_CONNECTIONS, BENCH_UNMODIFIED_ROUNDS; BENCH_RESOURCE_WORKERS,
// BENCH_RESOURCE_SAMPLES, BENCH_RESOURCE_WINDOW_S, BENCH_RESOURCE_RELOADS, BENCH_RESOURCE_ROUNDS
// (section 9). BENCH_ONLY=nodelay runs section 6 alone, BENCH_ONLY=upgrade section 7 (issue 12's
// goals), BENCH_ONLY=unmodified section 8 (an unmodified Node app under baton and PM2),
// BENCH_ONLY=resources section 9 (issue 24: sampling, the master's RSS across reloads, the Node
// adapter's cost), BENCH_ONLY=rolling section 10 (issue 25: a rolling reload and a soak; knobs
// BENCH_ROLL_WORKERS, BENCH_ROLL_ROUNDS, BENCH_ROLL_SOAK_MS), BENCH_ONLY=metrics section 11 (issue 26:
// the metrics endpoint off, on, scraped every second; BENCH_METRICS_ROUNDS, BENCH_METRICS_WINDOW_S), and writes it into bench/results.md and results.json beside the rest (a quick
// pass: build/bench-quick/).
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { NotifyHub } = require('./lib/notify-hub');
const { Bare, Baton, Cluster, Naive, Pm2, WORK, SERVER_CPU } = require('./lib/peers');
const { startWrk, actionsUnderLoad, LOAD_CPU, CONNECTIONS } = require('./lib/wrk');
const { sleep, rssKiB, cpuMs, alive, descendantsOf } = require('./lib/sys');
const { goals } = require('./lib/goals');
const unmodified = require('./lib/unmodified');
const resources = require('./lib/resources');
const rolling = require('./lib/rolling');
const metrics = require('./lib/metrics');
const { machine, writeSection, writeReport } = require('./lib/report');

const quick = process.env.BENCH_QUICK === '1';
const num = (name, full, short) => Number(process.env[name] || (quick ? short : full));
const list = (name, full, short) => (process.env[name] || (quick ? short : full)).split(',').map(Number);
const cfg = {
  rounds: num('BENCH_ROUNDS', 7, 2),
  seconds: num('BENCH_SECONDS', 5, 2),
  warmupSeconds: 1,
  reloads: num('BENCH_RELOADS', 20, 5),
  reloadRounds: num('BENCH_RELOAD_ROUNDS', 3, 1),
  pauseMs: 300,
  timingRounds: num('BENCH_TIMING_ROUNDS', 10, 3),
  scaleWorkers: list('BENCH_SCALE_WORKERS', '1,8,32,64', '1,8'),
  scaleListeners: list('BENCH_SCALE_LISTENERS', '1,16', '1,16'),
  scaleRounds: num('BENCH_SCALE_ROUNDS', 3, 1),
  nodelayRounds: num('BENCH_NODELAY_ROUNDS', 5, 1),
  goalRounds: num('BENCH_GOAL_ROUNDS', 10, 3),
  goalLoadUpgrades: num('BENCH_GOAL_LOAD_UPGRADES', 10, 3),
  goalReloads: num('BENCH_GOAL_RELOADS', 1000, 50),
  goalUpgrades: num('BENCH_GOAL_UPGRADES', 100, 10),
  resourceWorkers: list('BENCH_RESOURCE_WORKERS', '1,8,64', '1,8'),
  resourceSamples: num('BENCH_RESOURCE_SAMPLES', 200, 50),
  resourceWindowS: num('BENCH_RESOURCE_WINDOW_S', 20, 5),
  resourceReloads: num('BENCH_RESOURCE_RELOADS', 1000, 50),
  resourceRounds: num('BENCH_RESOURCE_ROUNDS', 5, 1),
  rollWorkers: num('BENCH_ROLL_WORKERS', 8, 4),
  rollRounds: num('BENCH_ROLL_ROUNDS', 6, 2),
  rollSoakMs: num('BENCH_ROLL_SOAK_MS', 3000, 1000),
  metricsRounds: num('BENCH_METRICS_ROUNDS', 4, 2),
  metricsWindowS: num('BENCH_METRICS_WINDOW_S', 30, 5),
  connections: CONNECTIONS,
  serverCpu: SERVER_CPU,
  loadCpu: LOAD_CPU,
};
const MODES = [
  { key: 'keepalive', fresh: false, label: 'keep-alive' },
  { key: 'fresh', fresh: true, label: 'new connection per request' },
];

let nextPort = 21000;
const ports = (n = 1) => {
  const p = nextPort;
  nextPort += Math.max(20, n);
  return p;
};
const log = (m) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const hub = new NotifyHub();

/** wrk for `seconds` while sampling the manager's CPU time and RSS (max of a sample every 250 ms). */
async function measure(port, fresh, seconds, managerPid) {
  const cpu0 = managerPid ? cpuMs(managerPid) : NaN;
  const t0 = performance.now();
  const w = startWrk({ port, fresh, seconds });
  let rssMax = NaN;
  const sampler = setInterval(() => {
    if (managerPid) rssMax = Math.max(Number.isNaN(rssMax) ? 0 : rssMax, rssKiB(managerPid));
  }, 250);
  const r = await w.done.finally(() => clearInterval(sampler));
  const wall = performance.now() - t0;
  return {
    rps: r.rps,
    p99ms: r.latency_us.p99 / 1000,
    p50ms: r.latency_us.p50 / 1000,
    failed: r.failed,
    requests: r.requests,
    managerCpuPct: managerPid ? ((cpuMs(managerPid) - cpu0) / wall) * 100 : NaN,
    managerRssKiB: rssMax,
  };
}

// ---- 1 and 4: throughput, p99, the manager's memory and CPU ----
async function throughput() {
  const peers = [new Bare({ port: ports(), hub }), new Baton({ port: ports(), hub }), new Cluster({ port: ports() }), new Pm2({ port: ports() })];
  const out = { samples: [], idleRssKiB: {} };
  for (const p of peers) {
    await p.start();
    await sleep(1000);
    if (p.managerPid()) out.idleRssKiB[p.name] = rssKiB(p.managerPid());
  }
  try {
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const mode of MODES) {
        // bare, baton, cluster, PM2 in odd rounds and the reverse in even ones: baton always
        // runs right next to bare (the ratio the goal is about), so the machine's drift over
        // a round (seen here: ±5 %) falls on both alike, and no peer always runs first
        const order = round % 2 ? peers : [...peers].reverse();
        for (const p of order) {
          await measure(p.port, mode.fresh, cfg.warmupSeconds);
          const s = await measure(p.port, mode.fresh, cfg.seconds, p.managerPid());
          out.samples.push({ round, mode: mode.key, peer: p.name, ...s });
          log(`throughput round ${round} ${mode.key} ${p.name}: ${Math.round(s.rps)} req/s, p99 ${s.p99ms.toFixed(1)} ms, ${s.failed} failed`);
        }
      }
    }
    for (const p of peers) if (p.managerPid()) out.idleRssKiB[`${p.name} after load`] = rssKiB(p.managerPid());
  } finally {
    for (const p of peers) await p.stop();
  }
  return out;
}

// ---- 2 (and 3 under load): failed requests while reloading under load ----
const TOOLS = [
  { key: 'baton-hup', label: 'baton HUP', make: (port) => new Baton({ port, hub }), act: (p) => p.reload() },
  { key: 'baton-usr2', label: 'baton USR2', make: (port) => new Baton({ port, hub }), act: async (p) => (await p.upgrade()).goneMs },
  { key: 'pm2-reload', label: 'pm2 reload', make: (port) => new Pm2({ port }), act: (p) => p.reload() },
  { key: 'naive-restart', label: 'naive restart (stop, start)', make: (port) => new Naive({ port }), act: (p) => p.reload() },
];

async function reloads() {
  const runs = [];
  for (let round = 1; round <= cfg.reloadRounds; round++) {
    for (const tool of TOOLS) {
      for (const mode of MODES) {
        const p = tool.make(ports());
        await p.start();
        await sleep(500);
        const firstManager = p.managerPid();
        let r;
        let times;
        let lastManager;
        try {
          ({ r, times } = await actionsUnderLoad({ port: p.port, fresh: mode.fresh, count: cfg.reloads, pauseMs: cfg.pauseMs, act: () => tool.act(p) }));
        } finally {
          lastManager = p.managerPid();
          await p.stop();
        }
        runs.push({ round, tool: tool.key, mode: mode.key, failed: r.failed, errors: r.errors, requests: r.requests, times, managerChanged: lastManager !== firstManager });
        log(`reloads round ${round} ${tool.key} ${mode.key}: ${cfg.reloads} reloads, ${r.requests} requests, ${r.failed} failed ${JSON.stringify(r.errors)}`);
      }
    }
  }
  return runs;
}

// ---- 3: reload and upgrade times with no load, against the workers' own boot time ----
async function timings() {
  const out = { bootMs: [], hupMs: [], usr2ReadyMs: [], usr2GoneMs: [], controlReadyMs: [], controlGoneMs: [] };
  // the floor: the same 2 workers started at once on the server CPU, until both sent READY=1
  const floor = new Bare({ port: ports(), hub });
  for (let i = 0; i < cfg.timingRounds; i++) {
    out.bootMs.push(await floor.start());
    await floor.stop();
  }
  const b = new Baton({ port: ports(), hub });
  await b.start();
  try {
    for (let i = 0; i < cfg.timingRounds; i++) {
      await sleep(300);
      out.hupMs.push(await b.reload());
    }
    for (let i = 0; i < cfg.timingRounds; i++) {
      await sleep(300);
      const u = await b.upgrade();
      out.usr2ReadyMs.push(u.readyMs);
      out.usr2GoneMs.push(u.goneMs);
    }
    // the same upgrade asked for on the control socket (what `baton upgrade` sends)
    for (let i = 0; i < cfg.timingRounds; i++) {
      await sleep(300);
      const u = await b.upgrade('control');
      out.controlReadyMs.push(u.readyMs);
      out.controlGoneMs.push(u.goneMs);
    }
  } finally {
    await b.stop();
  }
  log(`timings: boot ${out.bootMs.map(Math.round)} hup ${out.hupMs.map(Math.round)} usr2 ${out.usr2GoneMs.map(Math.round)}`);
  return out;
}

// ---- 5: how start, reload, stop and the master's memory grow with workers and listeners ----
async function scale() {
  const out = [];
  for (const listeners of cfg.scaleListeners) {
    for (const workers of cfg.scaleWorkers) {
      for (let round = 1; round <= cfg.scaleRounds; round++) {
        const b = new Baton({ port: ports(listeners), workers, listeners, hub });
        const startMs = await b.start();
        const masterCpuStartMs = cpuMs(b.pid);
        await sleep(500);
        const rssIdleKiB = rssKiB(b.pid);
        const cpu0 = cpuMs(b.pid);
        const reloadMs = await b.reload();
        const masterCpuReloadMs = cpuMs(b.pid) - cpu0;
        await sleep(500);
        const rssAfterReloadKiB = rssKiB(b.pid);
        const t0 = performance.now();
        await b.stop();
        const stopMs = performance.now() - t0;
        out.push({ workers, listeners, round, startMs, reloadMs, stopMs, rssIdleKiB, rssAfterReloadKiB, masterCpuStartMs, masterCpuReloadMs });
        log(`scale ${workers} workers ${listeners} listeners: start ${Math.round(startMs)} ms, reload ${Math.round(reloadMs)} ms, stop ${Math.round(stopMs)} ms, rss ${rssIdleKiB} KiB`);
      }
    }
  }
  return out;
}

// ---- 6: listeners[].noDelay, for a worker that never sets TCP_NODELAY itself ----
const PY_HTTP = ['python3', path.join(__dirname, 'app/py-http.py')];

async function nodelay() {
  const samples = [];
  for (let round = 1; round <= cfg.nodelayRounds; round++) {
    // on, off in odd rounds and the reverse in even ones
    const order = round % 2 ? [true, false] : [false, true];
    for (const noDelay of order) {
      const b = new Baton({ port: ports(), hub, command: PY_HTTP, options: { noDelay } });
      await b.start();
      try {
        await measure(b.port, false, cfg.warmupSeconds);
        const s = await measure(b.port, false, cfg.seconds);
        samples.push({ round, noDelay, ...s });
        log(`nodelay round ${round} noDelay ${noDelay}: ${Math.round(s.rps)} req/s, p99 ${s.p99ms.toFixed(1)} ms, ${s.failed} failed`);
      } finally {
        await b.stop();
      }
    }
  }
  return samples;
}

// ---- 7: issue 12's goals, beside the floor measured in the same run ----
const goalsRun = () => goals({ cfg, hub, ports, log, measure, modes: MODES });

// ---- 8: an unmodified Node app under baton (the adapter) and PM2 (issue 14) ----
const unmodifiedRun = () => unmodified.run({ cfg: { ...cfg, quick }, hub, ports, log, measure, modes: MODES });

// ---- 9: issue 24: sampling, the master's RSS across reloads, the Node adapter's cost ----
const resourcesRun = () => resources.run({ cfg, hub, ports, log, measure, modes: MODES });

// ---- 10: issue 25: a rolling reload and a soak, the time and memory a reload holds ----
const rollingRun = () => rolling.run({ cfg, hub, ports, log });

// ---- 11: issue 26: the metrics endpoint's cost to the master ----
const metricsRun = () => metrics.run({ cfg, hub, ports, log });

/** BENCH_ONLY's sections: the key their samples have in results.json. */
const ONLY = {
  nodelay: { key: 'nodelay', run: nodelay },
  upgrade: { key: 'goals', run: goalsRun },
  unmodified: { key: 'unmodified', run: unmodifiedRun },
  resources: { key: 'resources', run: resourcesRun },
  rolling: { key: 'rolling', run: rollingRun },
  metrics: { key: 'metrics', run: metricsRun },
};

function leftBehind() {
  const left = descendantsOf(process.pid).filter((p) => alive(p));
  if (left.length) throw new Error(`processes left behind: ${left.join(' ')}`);
}

async function main() {
  if (require('node:os').cpus().length < 2) throw new Error('make bench needs 2 cores: one for the servers, one for wrk');
  const started = new Date();
  log(`work folder ${WORK}; servers on CPU ${SERVER_CPU}, wrk on CPU ${LOAD_CPU}; ${quick ? 'QUICK pass' : 'full run'}`);
  const results = { date: started.toISOString(), quick, cfg, machine: machine() };
  const only = ONLY[process.env.BENCH_ONLY];
  if (process.env.BENCH_ONLY && !only) throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY}: give one of ${Object.keys(ONLY).join(', ')}`);
  if (only) {
    results[only.key] = await only.run();
    leftBehind();
    log(`done: wrote ${path.relative(process.cwd(), writeSection(results, only.key))}`);
    return;
  }
  results.throughput = await throughput();
  results.reloads = await reloads();
  results.timings = await timings();
  results.scale = await scale();
  results.nodelay = await nodelay();
  results.goals = await goalsRun();
  results.unmodified = await unmodifiedRun();
  results.resources = await resourcesRun();
  results.rolling = await rollingRun();
  results.metrics = await metricsRun();
  results.durationS = (Date.now() - started.getTime()) / 1000;
  leftBehind();
  const written = writeReport(results);
  log(`done in ${Math.round(results.durationS)} s; wrote ${path.relative(process.cwd(), written)}${quick ? ' (a quick pass: bench/ and the README are left as they were)' : ' and the README'}`);
}

main()
  .then(() => fs.rmSync(WORK, { recursive: true, force: true }))
  .catch((e) => {
    log(`FAILED: ${e.stack || e.message}`);
    log(`logs of the services are kept in ${WORK}`);
    process.exitCode = 1;
  })
  .finally(() => hub.close());
