'use strict';
// Section 7, issue 12's goals, each measured beside the floor (the workers' own boot) in the
// same run: USR2, the control socket's upgrade and `baton upgrade` to MAINPID=, idle and under
// load; the master's start; the master's RSS idle, under load, across reloads and upgrades.
const { Bare, Baton } = require('./peers');
const { startWrk } = require('./wrk');
const { sleep, rssKiB } = require('./sys');

/** The master's RSS after `settleMs` (a reload's or upgrade's garbage has had time to go). */
async function settledRss(b, settleMs = 500) {
  await sleep(settleMs);
  return rssKiB(b.pid);
}

/** Floor, master start and idle RSS: a fresh baton a round, each beside a bare start of the same workers. */
async function starts({ cfg, hub, ports }) {
  const out = { bootMs: [], startMs: [], rssIdleKiB: [] };
  const floor = new Bare({ port: ports(), hub });
  for (let i = 0; i < cfg.goalRounds; i++) {
    out.bootMs.push(await floor.start());
    await floor.stop();
    const b = new Baton({ port: ports(), hub });
    out.startMs.push(await b.start());
    try {
      out.rssIdleKiB.push(await settledRss(b, 1000));
    } finally {
      await b.stop();
    }
  }
  return out;
}

/** USR2, the control socket and the CLI, one after the other on one idle master. */
async function idleUpgrades({ cfg, hub, ports }) {
  const out = { usr2ReadyMs: [], controlReadyMs: [], cliReadyMs: [], cliMs: [] };
  const b = new Baton({ port: ports(), hub });
  await b.start();
  try {
    for (const [via, key] of [
      ['signal', 'usr2ReadyMs'],
      ['control', 'controlReadyMs'],
      ['cli', 'cliReadyMs'],
    ]) {
      for (let i = 0; i < cfg.goalRounds; i++) {
        await sleep(cfg.pauseMs);
        const u = await b.upgrade(via);
        out[key].push(u.readyMs);
        if (via === 'cli') out.cliMs.push(u.cliMs);
      }
    }
  } finally {
    await b.stop();
  }
  return out;
}

/** Per connection mode: the master's RSS under wrk (no upgrade), then USR2s under the same load. */
async function underLoad({ cfg, hub, ports, log, measure, modes }) {
  const out = [];
  for (const mode of modes) {
    const b = new Baton({ port: ports(), hub });
    await b.start();
    const readyMs = [];
    let load;
    let w;
    try {
      await sleep(500);
      await measure(b.port, mode.fresh, cfg.warmupSeconds);
      load = await measure(b.port, mode.fresh, cfg.seconds, b.pid);
      w = startWrk({ port: b.port, fresh: mode.fresh });
      await sleep(500);
      for (let i = 0; i < cfg.goalLoadUpgrades; i++) {
        readyMs.push((await b.upgrade()).readyMs);
        await sleep(cfg.pauseMs);
      }
    } finally {
      const r = w && (await w.stop());
      await b.stop();
      out.push({ mode: mode.key, readyMs, rssMaxKiB: load && load.managerRssKiB, failed: r && r.failed, requests: r && r.requests });
    }
    log(`goals under load ${mode.key}: USR2 → MAINPID= ${readyMs.map(Math.round)} ms, rss max ${load.managerRssKiB} KiB`);
  }
  return out;
}

/** `count` HUPs (each waiting for READY=1) or USR2s (each to MAINPID=, following the new pid); RSS every `every`. */
async function repeated({ hub, ports }, what, count, every) {
  const b = new Baton({ port: ports(), hub, workers: 1 });
  await b.start();
  const out = { count, every, rssKiB: [], ms: [] };
  try {
    out.rssKiB.push({ after: 0, kib: await settledRss(b, 1000) });
    for (let i = 1; i <= count; i++) {
      out.ms.push(what === 'reload' ? await b.reload() : (await b.upgrade()).readyMs);
      if (i % every === 0) out.rssKiB.push({ after: i, kib: await settledRss(b) });
      else if (what === 'upgrade') await sleep(100);
    }
  } finally {
    await b.stop();
  }
  return out;
}

async function goals(ctx) {
  const { cfg, log } = ctx;
  const out = await starts(ctx);
  log(`goals: floor ${out.bootMs.map(Math.round)} start ${out.startMs.map(Math.round)} rss ${out.rssIdleKiB}`);
  Object.assign(out, await idleUpgrades(ctx));
  log(`goals idle: USR2 ${out.usr2ReadyMs.map(Math.round)} control ${out.controlReadyMs.map(Math.round)} cli ${out.cliMs.map(Math.round)}`);
  out.underLoad = await underLoad(ctx);
  out.reloads = await repeated(ctx, 'reload', cfg.goalReloads, Math.max(1, Math.round(cfg.goalReloads / 10)));
  log(`goals: ${cfg.goalReloads} reloads, rss ${out.reloads.rssKiB.map((s) => s.kib)}`);
  out.upgrades = await repeated(ctx, 'upgrade', cfg.goalUpgrades, Math.max(1, Math.round(cfg.goalUpgrades / 10)));
  log(`goals: ${cfg.goalUpgrades} upgrades, rss ${out.upgrades.rssKiB.map((s) => s.kib)}`);
  return out;
}

module.exports = { goals };
