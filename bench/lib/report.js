'use strict';
// Turns the run's samples into bench/results.md, bench/results.json, two SVG charts and the
// README's pointer to them (between its bench:begin/bench:end markers).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { summary, fmt, head } = require('./stats');
const { GOALS_TITLE, goalsSection } = require('./report-goals');
const unmodified = require('./unmodified');
const resources = require('./resources');
const rolling = require('./rolling');
const metrics = require('./metrics');
const { barChart, lineChart } = require('./svg');

const BENCH = path.join(__dirname, '..');
const ROOT = path.join(BENCH, '..');

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return (e.stdout || '').trim() || 'unknown';
  }
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const osRelease = fs.readFileSync('/etc/os-release', 'utf8');
  const rev = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ? '+changes' : '';
  return {
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] || 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: (/PRETTY_NAME="([^"]*)"/.exec(osRelease) || [])[1] || 'unknown',
    node: process.version,
    wrk: sh('wrk', ['-v']).split('\n')[0].split(' [')[0],
    pm2: pm2Version(),
    baton: `${require(path.join(ROOT, 'package.json')).version} (git ${rev}${dirty})`,
  };
}

/** PM2's version, when `make bench` installed it (a BENCH_ONLY=nodelay run needs no PM2). */
function pm2Version() {
  try {
    return require(path.join(BENCH, 'node_modules/pm2/package.json')).version;
  } catch {
    return 'not installed';
  }
}

const by = (xs, pred) => xs.filter(pred);
const ms0 = (s) => fmt(s, 0, ' ms');
const MODE_LABEL = { keepalive: 'keep-alive', fresh: 'new connection per request' };
const TOOL_LABEL = { 'baton-hup': 'baton HUP', 'baton-usr2': 'baton USR2', 'pm2-reload': 'pm2 reload', 'naive-restart': 'naive restart' };
const PEERS = ['bare', 'baton', 'cluster', 'pm2'];
const PEER_LABEL = { bare: 'bare', baton: 'baton', cluster: 'Node cluster', pm2: 'PM2 cluster' };
const MANAGERS = { baton: 'baton master', cluster: 'Node cluster primary', pm2: 'PM2 daemon' };

function throughputTables(r) {
  const t = r.throughput;
  const rows = [];
  const ratioRows = [];
  const goal = {};
  for (const mode of ['keepalive', 'fresh']) {
    const s = by(t.samples, (x) => x.mode === mode);
    const cell = (peer, key, d) => fmt(summary(by(s, (x) => x.peer === peer).map((x) => x[key])), d);
    rows.push(`| ${MODE_LABEL[mode]} | req/s | ${PEERS.map((p) => cell(p, 'rps', 0)).join(' | ')} |`);
    rows.push(`| ${MODE_LABEL[mode]} | p99 ms | ${PEERS.map((p) => cell(p, 'p99ms', 1)).join(' | ')} |`);
    const ratio = (peer) => {
      const v = [];
      for (let round = 1; round <= r.cfg.rounds; round++) {
        const a = s.find((x) => x.round === round && x.peer === 'baton');
        const b = s.find((x) => x.round === round && x.peer === peer);
        if (a && b) v.push(a.rps / b.rps);
      }
      return summary(v);
    };
    const vsBare = ratio('bare');
    goal[mode] = vsBare.median;
    ratioRows.push(`| ${MODE_LABEL[mode]} | ${fmt(vsBare, 3)} | ${fmt(ratio('cluster'), 3)} | ${fmt(ratio('pm2'), 3)} |`);
  }
  return [
    ...head('connections', 'figure', ...PEERS.map((p) => PEER_LABEL[p])),
    ...rows,
    '',
    'Throughput ratios, each from one round (the peers ran back to back), median (min–max) over the rounds:',
    '',
    ...head('connections', 'baton / bare', 'baton / Node cluster', 'baton / PM2'),
    ...ratioRows,
    '',
    '![throughput](charts/throughput.svg)',
    '',
    `Goal baton ≥ 0.97 × bare: keep-alive ${goal.keepalive >= 0.97 ? 'met' : 'NOT met'} (${goal.keepalive.toFixed(3)}), new connections ${goal.fresh >= 0.97 ? 'met' : 'NOT met'} (${goal.fresh.toFixed(3)}).`,
  ];
}

function throughputChart(r) {
  const items = [];
  for (const mode of ['keepalive', 'fresh']) {
    for (const peer of PEERS) {
      const v = summary(by(r.throughput.samples, (x) => x.mode === mode && x.peer === peer).map((x) => x.rps)).median;
      items.push({ label: `${PEER_LABEL[peer]}, ${mode === 'fresh' ? 'new conn.' : 'keep-alive'}`, value: v, baton: peer === 'baton' });
    }
  }
  return barChart({ title: 'Requests per second, 2 workers on one core (median)', items });
}

function reloadRows(r) {
  const rows = [];
  for (const tool of Object.keys(TOOL_LABEL)) {
    for (const mode of ['keepalive', 'fresh']) {
      const runs = by(r.reloads, (x) => x.tool === tool && x.mode === mode);
      if (!runs.length) continue;
      const errors = {};
      for (const x of runs) for (const [k, v] of Object.entries(x.errors)) if (v) errors[k] = (errors[k] || 0) + v;
      const kinds = Object.entries(errors).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
      rows.push(
        `| ${TOOL_LABEL[tool]} | ${MODE_LABEL[mode]} | **${fmt(summary(runs.map((x) => x.failed)))}** | ${fmt(summary(runs.map((x) => x.requests)))} | ${kinds} | ${ms0(summary(runs.flatMap((x) => x.times)))} |`,
      );
    }
  }
  return rows;
}

function failedChart(r) {
  const items = [];
  for (const tool of Object.keys(TOOL_LABEL)) {
    for (const mode of ['keepalive', 'fresh']) {
      const runs = by(r.reloads, (x) => x.tool === tool && x.mode === mode);
      if (runs.length) items.push({ label: `${TOOL_LABEL[tool]}, ${mode === 'fresh' ? 'new conn.' : 'keep-alive'}`, value: summary(runs.map((x) => x.failed)).median, baton: tool.startsWith('baton') });
    }
  }
  return barChart({ title: `Failed requests while reloading ${r.cfg.reloads} times under load (median of ${r.cfg.reloadRounds} runs)`, items, log: true });
}

function timingRows(r) {
  const t = r.timings;
  const underLoad = (tool) => summary(by(r.reloads, (x) => x.tool === tool).flatMap((x) => x.times));
  return [
    ...head('what', 'idle', 'under load (both connection modes)'),
    `| workers' own boot: 2 workers started at once, until both sent READY=1 (the floor) | ${ms0(summary(t.bootMs))} | – |`,
    `| baton HUP → new generation serving (master's READY=1) | ${ms0(summary(t.hupMs))} | ${ms0(underLoad('baton-hup'))} |`,
    `| baton USR2 → new master ready (MAINPID= sent) | ${ms0(summary(t.usr2ReadyMs))} | – |`,
    `| baton USR2 → new master ready and old master gone | ${ms0(summary(t.usr2GoneMs))} | ${ms0(underLoad('baton-usr2'))} |`,
    `| upgrade on the control socket (what \`baton upgrade\` sends) → new master ready | ${ms0(summary(t.controlReadyMs))} | – |`,
    `| upgrade on the control socket → new master ready and old master gone | ${ms0(summary(t.controlGoneMs))} | – |`,
    `| pm2 reload (the CLI's run: one worker after the other) | – | ${ms0(underLoad('pm2-reload'))} |`,
    `| naive restart: stop, start, answering again | – | ${ms0(underLoad('naive-restart'))} |`,
  ];
}

function memoryRows(r) {
  const t = r.throughput;
  const mib = (k) => (Number.isFinite(k) ? k / 1024 : NaN);
  const rows = [];
  for (const peer of ['baton', 'cluster', 'pm2']) {
    const s = (mode, key) => summary(by(t.samples, (x) => x.peer === peer && x.mode === mode).map((x) => x[key]));
    const rss = (mode) => fmt(summary(by(t.samples, (x) => x.peer === peer && x.mode === mode).map((x) => mib(x.managerRssKiB))), 1, ' MiB');
    rows.push(
      `| ${MANAGERS[peer]} | ${fmt(summary([mib(t.idleRssKiB[peer])]), 1, ' MiB')} | ${rss('keepalive')} | ${rss('fresh')} | ${fmt(s('keepalive', 'managerCpuPct'), 1, ' %')} | ${fmt(s('fresh', 'managerCpuPct'), 1, ' %')} |`,
    );
  }
  return [
    ...head(
      'process',
      'RSS idle',
      'RSS under load, keep-alive',
      'RSS under load, new connections',
      'CPU under load, keep-alive',
      'CPU under load, new connections',
    ),
    ...rows,
  ];
}

function scaleRows(r) {
  const rows = [];
  for (const listeners of r.cfg.scaleListeners) {
    for (const workers of r.cfg.scaleWorkers) {
      const s = by(r.scale, (x) => x.workers === workers && x.listeners === listeners);
      const f = (key, d = 0, unit = ' ms', k = 1) => fmt(summary(s.map((x) => x[key] / k)), d, unit);
      rows.push(
        `| ${workers} | ${listeners} | ${f('startMs')} | ${f('reloadMs')} | ${f('stopMs')} | ${f('masterCpuStartMs')} | ${f('masterCpuReloadMs')} | ${f('rssIdleKiB', 1, ' MiB', 1024)} | ${f('rssAfterReloadKiB', 1, ' MiB', 1024)} |`,
      );
    }
  }
  return [
    ...head(
      'workers',
      'listeners',
      'start (to READY=1)',
      'reload (HUP to READY=1)',
      'stop (TERM to exit)',
      'master CPU time: start',
      'master CPU time: reload',
      'master RSS',
      'master RSS after the reload',
    ),
    ...rows,
  ];
}

function scaleChart(r) {
  const series = [];
  for (const listeners of r.cfg.scaleListeners) {
    for (const [key, what] of [
      ['startMs', 'start'],
      ['reloadMs', 'reload'],
    ]) {
      series.push({
        label: `${what}, ${listeners} listener${listeners > 1 ? 's' : ''}`,
        points: r.cfg.scaleWorkers.map((w) => [w, summary(by(r.scale, (x) => x.workers === w && x.listeners === listeners).map((x) => x[key])).median]),
      });
    }
  }
  return lineChart({ title: 'baton start and reload time (ms, median) by number of workers', xLabel: 'workers', series });
}

const NODELAY_TITLE = '## 6. listeners[].noDelay, for a worker that never sets TCP_NODELAY';

function nodelaySection(r) {
  const s = r.nodelay;
  // a BENCH_ONLY=nodelay run keeps its own date and settings beside the full run's
  const run = r.nodelayRun || r;
  const c = run.cfg;
  const cell = (on, key, d) => fmt(summary(by(s, (x) => x.noDelay === on).map((x) => x[key])), d);
  const ratios = [];
  for (let round = 1; round <= c.nodelayRounds; round++) {
    const on = s.find((x) => x.round === round && x.noDelay);
    const off = s.find((x) => x.round === round && !x.noDelay);
    if (on && off) ratios.push(on.rps / off.rps);
  }
  return [
    NODELAY_TITLE,
    '',
    `baton (2 workers) running \`bench/app/py-http.py\`: Python's http.server over \`socket.socket(fileno=3)\`, HTTP/1.1 keep-alive, headers and body in two \`send()\` calls, no TCP_NODELAY of its own; wrk \`-t1 -c${c.connections}\` keep-alive, pinned as above. ${c.nodelayRounds} rounds of ${c.seconds} s per setting after a ${c.warmupSeconds} s warm-up (on, off in odd rounds, the reverse in even ones); run ${run.date.slice(0, 10)}${run.quick ? ' (QUICK pass)' : ''}. Linux copies TCP_NODELAY from the listener to every connection accepted on it.`,
    '',
    ...head('listener', 'req/s', 'p99 ms', 'failed requests'),
    `| \`noDelay: true\` (the default) | ${cell(true, 'rps', 0)} | ${cell(true, 'p99ms', 1)} | ${cell(true, 'failed', 0)} |`,
    `| \`noDelay: false\` (systemd's default) | ${cell(false, 'rps', 0)} | ${cell(false, 'p99ms', 1)} | ${cell(false, 'failed', 0)} |`,
    '',
    `On / off, each from one round: ${fmt(summary(ratios), 1, '×')}.`,
  ];
}

function setup(r) {
  const m = r.machine;
  const c = r.cfg;
  return [
    `- Date: ${r.date.slice(0, 10)}; the whole run took ${Math.round(r.durationS / 60)} min${r.quick ? ' (QUICK pass: too few rounds to quote)' : ''}.`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}, Linux ${m.kernel}.`,
    `- Versions: baton ${m.baton}, Node ${m.node}, ${m.wrk}, PM2 ${m.pm2}.`,
    `- Every peer runs the same \`bench/app/hello.js\` (2 workers, 127.0.0.1, a 12-byte answer), listening and stopping gracefully through \`baton/worker\`'s \`serve()\`.`,
    `- Cores: everything on the server side (managers and workers) is pinned to CPU ${c.serverCpu} and wrk (\`-t1 -c${c.connections}\`) to CPU ${c.loadCpu} with \`taskset\`, so the load generator can never take the workers' core. The harness also runs on CPU ${c.loadCpu} and sleeps while wrk measures.`,
    `- Throughput: ${c.rounds} rounds of ${c.seconds} s per peer and connection mode, each after a ${c.warmupSeconds} s warm-up; the order is bare, baton, Node cluster, PM2 in odd rounds and the reverse in even ones. Reloads: ${c.reloadRounds} runs of ${c.reloads} reloads per tool and mode, ${c.pauseMs} ms apart, under the same wrk load. Figures are median (min–max).`,
  ];
}

function render(r) {
  return [
    '# baton benchmarks',
    '',
    'Written by `make bench` (bench/run.js); every sample is in `bench/results.json`. Run it again to',
    'reproduce; the README links this page.',
    '',
    '## Setup',
    '',
    ...setup(r),
    '',
    '## 1. Throughput and p99 latency',
    '',
    ...throughputTables(r),
    '',
    `## 2. Failed requests while reloading ${r.cfg.reloads} times under load`,
    '',
    `A failed request is anything wrk did not get a 2xx answer for: refused or reset connections, requests left unanswered, timeouts (10 s), other statuses. Per run of ${r.cfg.reloads} reloads:`,
    '',
    ...head('tool', 'connections', 'failed requests', 'requests in the run', 'kinds of failure (all runs)', 'one reload took'),
    ...reloadRows(r),
    '',
    'wrk retries a refused connection at once, so during a naive restart it counts every attempt that hits the closed port: that count grows with the client\'s retry rate, and any count above 0 is requests a user saw fail. ' +
      `In every baton USR2 run the master's pid had changed at the end: ${by(r.reloads, (x) => x.tool === 'baton-usr2').every((x) => x.managerChanged) ? 'yes' : 'NO'}.`,
    '',
    '![failed requests](charts/failed.svg)',
    '',
    '## 3. How long a reload and an upgrade take',
    '',
    ...timingRows(r),
    '',
    '## 4. The manager\'s memory and CPU',
    '',
    'RSS of the manager process alone (not its workers); under load, the largest of samples taken every 250 ms. CPU: the share of one core the manager used while wrk ran.',
    '',
    ...memoryRows(r),
    '',
    '## 5. Scale: workers and listeners',
    '',
    ...scaleRows(r),
    '',
    '![scale](charts/scale.svg)',
    '',
    ...(r.nodelay ? [...nodelaySection(r), ''] : []),
    ...(r.goals ? [...goalsSection(r), ''] : []),
    ...(r.unmodified ? [...unmodified.render(r), ''] : []),
    ...(r.resources ? [...resources.render(r), ''] : []),
    ...(r.rolling ? [...rolling.render(r), ''] : []),
    ...(r.metrics ? [...metrics.render(r), ''] : []),
  ].join('\n');
}

/**
 * A full run writes into bench/ and the README; a quick pass (too few rounds to quote) into
 * build/bench-quick/ only. Returns the results.md written.
 */
function writeReport(r) {
  const out = r.quick ? path.join(ROOT, 'build/bench-quick') : BENCH;
  fs.mkdirSync(path.join(out, 'charts'), { recursive: true });
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(r, null, 1) + '\n');
  fs.writeFileSync(path.join(out, 'charts/throughput.svg'), throughputChart(r));
  fs.writeFileSync(path.join(out, 'charts/failed.svg'), failedChart(r));
  fs.writeFileSync(path.join(out, 'charts/scale.svg'), scaleChart(r));
  const md = render(r);
  fs.writeFileSync(path.join(out, 'results.md'), md);
  if (r.quick) return path.join(out, 'results.md');
  // The README points here
  const readme = path.join(ROOT, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const begin = '<!-- bench:begin (written by make bench) -->';
  const end = '<!-- bench:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${begin} ... ${end} section to write`);
  // a pointer, not the tables: the README is a front page (bench/results.md has them all)
  const body = `The last full run: ${r.date.slice(0, 10)}, baton ${r.machine?.baton ?? ''}; its tables: [bench/results.md](bench/results.md).`;
  fs.writeFileSync(readme, `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`);
  return path.join(out, 'results.md');
}

/** The sections a partial run (BENCH_ONLY) writes alone: the key of their samples in results.json. */
const SECTIONS = {
  nodelay: { title: NODELAY_TITLE, render: nodelaySection },
  goals: { title: GOALS_TITLE, render: goalsSection },
  unmodified: { title: unmodified.TITLE, render: unmodified.render },
  resources: { title: resources.TITLE, render: resources.render },
  rolling: { title: rolling.TITLE, render: rolling.render },
  metrics: { title: metrics.TITLE, render: metrics.render },
};

/**
 * BENCH_ONLY: one section alone, written into results.md (replacing the section up to the next
 * heading, or after the others) and its samples into results.json (with `<key>Run`: when, how,
 * where), beside the full run's.
 */
function writeSection(r, key) {
  const { title, render: section } = SECTIONS[key];
  const out = r.quick ? path.join(ROOT, 'build/bench-quick') : BENCH;
  fs.mkdirSync(out, { recursive: true });
  const jsonFile = path.join(out, 'results.json');
  const all = fs.existsSync(jsonFile) ? JSON.parse(fs.readFileSync(jsonFile, 'utf8')) : {};
  all[key] = r[key];
  all[`${key}Run`] = { date: r.date, quick: r.quick, cfg: r.cfg, machine: r.machine };
  fs.writeFileSync(jsonFile, JSON.stringify(all, null, 1) + '\n');
  const mdFile = path.join(out, 'results.md');
  const md = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : '';
  const at = md.indexOf(title);
  const next = at < 0 ? -1 : md.indexOf('\n## ', at + title.length);
  const before = (at < 0 ? md : md.slice(0, at)).replace(/\n*$/, '\n\n').replace(/^\n+$/, '');
  const after = next < 0 ? '' : `\n${md.slice(next + 1)}`;
  fs.writeFileSync(mdFile, `${before}${section(r).join('\n')}\n${after}`);
  return mdFile;
}

module.exports = { machine, writeSection, writeReport, render };
