'use strict';
// Section 11 (issue 26): what the metrics endpoint costs the master. The same master (2 workers
// of app/hello.js) with metrics off, on and not scraped, and on and scraped every second (as a
// Prometheus with scrape_interval 1s would), ABBA: its RSS settled after a window, and its CPU
// time over the window.
const http = require('node:http');
const { summary, fmt, head } = require('./stats');

const TITLE = '## 11. Issue 26: what the metrics endpoint costs the master';

const scrape = (port) =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let n = 0;
      res.on('data', (d) => (n += d.length));
      res.on('end', () => resolve(res.statusCode === 200 ? n : 0));
    });
    req.on('error', () => resolve(0));
  });

async function run({ cfg, hub, ports, log }) {
  const { Baton } = require('./peers');
  const { sleep, rssKiB, cpuMs } = require('./sys');
  const variants = [
    { key: 'off', label: 'off' },
    { key: 'idle', label: 'on, not scraped' },
    { key: 'scraped', label: 'on, scraped every second' },
  ];
  const out = [];
  for (let round = 1; round <= cfg.metricsRounds; round++) {
    for (const v of round % 2 ? variants : [...variants].reverse()) {
      const metricsPort = ports();
      const b = new Baton({ port: ports(), hub, top: v.key === 'off' ? {} : { metrics: { listen: `127.0.0.1:${metricsPort}` } } });
      await b.start();
      let bytes = 0;
      try {
        await sleep(2000);
        const c0 = cpuMs(b.pid);
        for (let s = 0; s < cfg.metricsWindowS; s++) {
          if (v.key === 'scraped') bytes = await scrape(metricsPort);
          await sleep(1000);
        }
        const cpu = cpuMs(b.pid) - c0;
        const rss = rssKiB(b.pid);
        out.push({ round, variant: v.key, rssKiB: rss, cpuMs: cpu, windowS: cfg.metricsWindowS, bytes });
        log(`metrics ${v.key}, round ${round}: rss ${rss} KiB, cpu ${cpu} ms over ${cfg.metricsWindowS} s${bytes ? `, ${bytes} bytes a scrape` : ''}`);
      } finally {
        await b.stop();
      }
    }
  }
  return { variants, samples: out };
}

function render(r) {
  const s = r.metrics;
  const run = r.metricsRun || r;
  const c = run.cfg;
  const of = (key) => s.samples.filter((x) => x.variant === key);
  const off = summary(of('off').map((x) => x.rssKiB)).median;
  const rows = s.variants.map((v) => {
    const xs = of(v.key);
    const rss = summary(xs.map((x) => x.rssKiB / 1024));
    const cpu = summary(xs.map((x) => x.cpuMs));
    const share = summary(xs.map((x) => (x.cpuMs / (x.windowS * 1000)) * 100));
    const delta = (summary(xs.map((x) => x.rssKiB)).median - off) / 1024;
    return `| ${v.label} | ${fmt(rss, 1)} | ${v.key === 'off' ? '–' : `${delta >= 0 ? '+' : ''}${delta.toFixed(2)}`} | ${fmt(cpu, 0)} | ${fmt(share, 3)} % |`;
  });
  const bytes = of('scraped').map((x) => x.bytes).filter(Boolean);
  return [
    TITLE,
    '',
    `Run ${run.date.slice(0, 10)}${run.quick ? ' (QUICK pass)' : ''} on baton ${run.machine?.baton ?? ''}. Figures: median (min–max) over ${c.metricsRounds} masters each, the variants in ABBA order. A master of 2 workers of \`app/hello.js\` (bin/baton, pinned to CPU ${c.serverCpu}), 2 s after its READY=1, then a ${c.metricsWindowS} s window: the master's CPU time over it (10 ms ticks) and its RSS at its end. Scraped: one GET /metrics a second from the harness${bytes.length ? ` (${bytes[0]} bytes each)` : ''}. Goal: RSS unchanged when off, ≤ 3 MiB more when on.`,
    '',
    ...head('metrics', 'master RSS, MiB', 'RSS against off, MiB (medians)', `master CPU over ${c.metricsWindowS} s, ms`, 'share of one core'),
    ...rows,
  ];
}

module.exports = { run, render, TITLE };
