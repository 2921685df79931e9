'use strict';
// Section 10 (issue 25): what a reload holds while it runs. N workers of app/hello.js, one
// reload at a time, ABBA over the variants:
//   generation:        every new worker at once beside the old ones (the default);
//   rolling, surge 1:  slot by slot (reload.strategy "rolling"), at most N + 1 workers;
//   generation + soak: the old generation kept serving beside the new one for soakMs.
// Per reload: HUP to the master's READY=1 (ms), and, sampled every 10 ms meanwhile, the most
// workers alive and the most RSS of the master and every worker together (MiB), against the same
// sum before the reload.
const { summary, fmt, head } = require('./stats');

const TITLE = '## 10. Issue 25: a rolling reload and a soak, what they take';

const MiB = (kib) => kib / 1024;

/** Workers alive and the RSS of the whole tree (master included), now. */
function tree(pid) {
  const { descendantsOf, rssKiB } = require('./sys');
  const kids = descendantsOf(pid);
  return { workers: kids.length, kib: [pid, ...kids].reduce((a, p) => a + (rssKiB(p) || 0), 0) };
}

async function run({ cfg, hub, ports, log }) {
  const { Baton } = require('./peers');
  const { sleep } = require('./sys');
  const n = cfg.rollWorkers;
  const variants = [
    { key: 'generation', label: 'generation', top: {} },
    { key: 'rolling', label: 'rolling, surge 1', top: { reload: { strategy: 'rolling', surge: 1 } } },
    { key: 'soak', label: `generation, soakMs ${cfg.rollSoakMs}`, top: { reload: { soakMs: cfg.rollSoakMs } } },
  ];
  const peers = variants.map((v) => Object.assign(new Baton({ port: ports(), hub, workers: n, top: v.top }), { key: v.key }));
  const out = [];
  for (const p of peers) await p.start();
  try {
    await sleep(1000);
    for (let round = 1; round <= cfg.rollRounds; round++) {
      for (const p of round % 2 ? peers : [...peers].reverse()) {
        const before = tree(p.pid);
        let most = before;
        let mostWorkers = before.workers;
        const t = setInterval(() => {
          const now = tree(p.pid);
          if (now.kib > most.kib) most = now;
          mostWorkers = Math.max(mostWorkers, now.workers);
        }, 10);
        let ms;
        try {
          ms = await p.reload();
        } finally {
          clearInterval(t);
        }
        out.push({ round, variant: p.key, ms, workersBefore: before.workers, mostWorkers, kibBefore: before.kib, kibMost: most.kib });
        log(`reload ${p.key}, round ${round}: ${Math.round(ms)} ms, at most ${mostWorkers} workers, RSS ${Math.round(MiB(before.kib))} -> at most ${Math.round(MiB(most.kib))} MiB`);
        // the old workers gone before the next
        await sleep(1500);
      }
    }
  } finally {
    for (const p of peers) await p.stop();
  }
  return { workers: n, soakMs: cfg.rollSoakMs, variants: variants.map(({ key, label }) => ({ key, label })), samples: out };
}

function render(r) {
  const s = r.rolling;
  const run = r.rollingRun || r;
  const c = run.cfg;
  const median = (key, f) => summary(s.samples.filter((x) => x.variant === key).map(f)).median;
  const ratio = (a, b, f) => median(a, f) / median(b, f);
  const rows = s.variants.map((v) => {
    const xs = s.samples.filter((x) => x.variant === v.key);
    const ms = summary(xs.map((x) => x.ms));
    const most = summary(xs.map((x) => x.mostWorkers));
    const before = summary(xs.map((x) => MiB(x.kibBefore)));
    const top = summary(xs.map((x) => MiB(x.kibMost)));
    const extra = summary(xs.map((x) => MiB(x.kibMost - x.kibBefore)));
    return `| ${v.label} | ${fmt(ms, 0)} | ${fmt(most, 0)} | ${fmt(before, 1)} | ${fmt(top, 1)} | ${fmt(extra, 1)} |`;
  });
  return [
    TITLE,
    '',
    `Run ${run.date.slice(0, 10)}${run.quick ? ' (QUICK pass)' : ''} on baton ${run.machine?.baton ?? ''}. Figures: median (min–max) over ${c.rollRounds} reloads each, the variants in ABBA order. ${s.workers} workers of \`app/hello.js\` (pinned to CPU ${c.serverCpu}), no load; each HUP timed to the master's READY=1 (the reload's end: for the soak, its end too). Workers alive and the RSS of the master and all its workers together, sampled every 10 ms during the reload.`,
    '',
    ...head('reload', 'HUP to READY=1, ms', 'most workers alive', 'RSS before, MiB', 'most RSS, MiB', 'extra RSS, MiB'),
    ...rows,
    '',
    `The rolling reload took ${ratio('rolling', 'generation', (x) => x.ms).toFixed(2)} × the generation reload's time and held ${ratio('rolling', 'generation', (x) => x.kibMost - x.kibBefore).toFixed(2)} × its extra memory. Its slots start one after another (surge 1); the generation's ${s.workers} start together, here on one core, so they overlap less than they would with cores to spare. The soak holds both generations for its length: the generation reload's extra memory, ${s.soakMs} ms longer.`,
  ];
}

module.exports = { run, render, TITLE };
