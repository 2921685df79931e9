'use strict';
// Section 8 (issue 14): the same unmodified Node app (app/unmodified.js: listen(PORT), no
// signal handling) under baton, through its Node adapter, and under PM2 cluster mode. Per
// tool, connection mode and round: a fresh service, its throughput under wrk for
// cfg.seconds, then cfg.reloads reloads (or upgrades) under wrk, counting failed requests.
const { summary, fmt } = require('./stats');

const TITLE = '## 8. An unmodified Node app: baton (the Node adapter) and PM2';

const TOOLS = [
  { key: 'baton-hup', label: 'baton HUP (`systemctl reload`)' },
  { key: 'baton-usr2', label: 'baton USR2 (binary upgrade)' },
  { key: 'pm2-reload', label: 'pm2 reload' },
];

async function run({ cfg, hub, ports, log, measure, modes }) {
  // here, not at the top: report.js loads this file for render() alone
  const { Baton, Pm2, UNMODIFIED } = require('./peers');
  const { actionsUnderLoad } = require('./wrk');
  const { sleep } = require('./sys');
  const tools = {
    'baton-hup': { make: (port) => new Baton({ port, hub, command: ['node', UNMODIFIED] }), act: (p) => p.reload() },
    'baton-usr2': { make: (port) => new Baton({ port, hub, command: ['node', UNMODIFIED] }), act: async (p) => (await p.upgrade()).goneMs },
    'pm2-reload': { make: (port) => new Pm2({ port, script: UNMODIFIED }), act: (p) => p.reload() },
  };
  const rounds = Number(process.env.BENCH_UNMODIFIED_ROUNDS || (cfg.quick ? 1 : 3));
  const out = [];
  for (let round = 1; round <= rounds; round++) {
    // PM2 first in even rounds: neither always runs on a warmer machine
    const order = round % 2 ? TOOLS : [...TOOLS].reverse();
    for (const { key } of order) {
      const tool = { key, ...tools[key] };
      for (const mode of modes) {
        const p = tool.make(ports());
        await p.start();
        let steady;
        let r;
        let times;
        try {
          await sleep(cfg.warmupSeconds * 1000);
          steady = await measure(p.port, mode.fresh, cfg.seconds, p.managerPid());
          ({ r, times } = await actionsUnderLoad({ port: p.port, fresh: mode.fresh, count: cfg.reloads, pauseMs: cfg.pauseMs, act: () => tool.act(p) }));
        } finally {
          await p.stop();
        }
        out.push({ round, tool: tool.key, mode: mode.key, rps: steady.rps, p99ms: steady.p99ms, failed: r.failed, errors: r.errors, requests: r.requests, times });
        log(`unmodified round ${round} ${tool.key} ${mode.key}: ${Math.round(steady.rps)} req/s; ${cfg.reloads} reloads, ${r.requests} requests, ${r.failed} failed ${JSON.stringify(r.errors)}`);
      }
    }
  }
  return out;
}

function render(r) {
  const s = r.unmodified;
  const run = r.unmodifiedRun || r;
  const c = run.cfg;
  const rows = [];
  for (const tool of TOOLS) {
    for (const mode of ['keepalive', 'fresh']) {
      const x = s.filter((v) => v.tool === tool.key && v.mode === mode);
      if (!x.length) continue;
      const kinds = {};
      for (const v of x) for (const [k, n] of Object.entries(v.errors || {})) if (n) kinds[k] = (kinds[k] || 0) + n;
      const failed = x.map((v) => v.failed);
      rows.push(
        `| ${tool.label} | ${mode === 'keepalive' ? 'keep-alive' : 'new connection per request'} | **${failed.reduce((a, b) => a + b, 0)}** (${failed.join(', ')}) | ${fmt(summary(x.map((v) => v.rps)), 0)} | ${fmt(summary(x.map((v) => v.p99ms)), 1)} | ${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'} |`,
      );
    }
  }
  return [
    TITLE,
    '',
    `\`bench/app/unmodified.js\`: \`http.createServer(...).listen(process.env.PORT || 3000)\`, no signal handling, no baton module; 2 workers; baton runs it as \`["node", "unmodified.js"]\` (the adapter is on by default for Node), PM2 in cluster mode (\`instances: 2\`, \`kill_timeout\` 10 s). Per tool and connection mode, ${s.reduce((m, v) => Math.max(m, v.round), 0)} run(s) (run ${run.date.slice(0, 10)}${run.quick ? ', QUICK pass' : ''}): a fresh service, its throughput for ${c.seconds} s after a ${c.warmupSeconds} s warm-up, then ${c.reloads} reloads ${c.pauseMs} ms apart under the same wrk load (\`-t1 -c${c.connections}\`, pinned as above). A failed request is anything wrk did not get a 2xx answer for.`,
    '',
    '| tool | connections | failed requests, all runs (per run) | req/s | p99 ms | kinds of failure |',
    '|---|---|---|---|---|---|',
    ...rows,
  ];
}

module.exports = { run, render, TITLE };
