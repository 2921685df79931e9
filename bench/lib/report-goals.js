'use strict';
// Section 7 of bench/results.md: issue 12's goals, each figure beside its goal and whether it
// is met. The floor and every figure come from the same run (bench/lib/goals.js).
const { summary, fmt, head } = require('./stats');

const GOALS_TITLE = '## 7. Issue 12 goals: upgrade, start-up and the master\'s memory';
const UPGRADE_OVER_FLOOR_MS = 150;
const START_OVER_FLOOR_MS = 100;
const RSS_IDLE_MIB = 45;
/** "Flat": no sample more than this share above the first (idle) one. */
const FLAT = 0.1;
const MODE_LABEL = { keepalive: 'keep-alive', fresh: 'new connection per request' };

const ms0 = (s) => fmt(s, 0, ' ms');
const mib = (kib) => kib / 1024;
const mib1 = (s) => fmt(s, 1, ' MiB');
const met = (figure, limit) => (Number.isFinite(figure) && Number.isFinite(limit) ? (figure <= limit ? 'met' : '**not met**') : '–');
const row = (what, figure, goal, verdict) => `| ${what} | ${figure} | ${goal} | ${verdict} |`;
const n = (x) => x.toLocaleString('en-US');
const times = (k, what) => (k === 1 ? what : `${n(k)} ${what}s`);

/** A repeated run's RSS: the row of its last sample against the first, and the list of samples. */
function flatRow(what, run) {
  const first = mib(run.rssKiB[0].kib);
  const max = Math.max(...run.rssKiB.map((s) => mib(s.kib)));
  const last = mib(run.rssKiB[run.rssKiB.length - 1].kib);
  return row(
    `${what}: last sample (largest of all)`,
    `${last.toFixed(1)} MiB (${max.toFixed(1)} MiB)`,
    `flat: every sample ≤ the first (${first.toFixed(1)} MiB) + ${FLAT * 100} %`,
    met(max, first * (1 + FLAT)),
  );
}

const samples = (run, what) =>
  `- RSS after ${run.rssKiB.map((s) => n(s.after)).join(', ')} ${what}: ${run.rssKiB.map((s) => mib(s.kib).toFixed(1)).join(', ')} MiB; one took ${ms0(summary(run.ms))}.`;

function goalsSection(r) {
  const g = r.goals;
  const run = r.goalsRun || r;
  const c = run.cfg;
  const floor = summary(g.bootMs).median;
  const upgradeLimit = floor + UPGRADE_OVER_FLOOR_MS;
  const upgradeGoal = `≤ floor + ${UPGRADE_OVER_FLOOR_MS} ms = ${n(Math.round(upgradeLimit))} ms`;
  const usr2 = summary(g.usr2ReadyMs);
  const control = summary(g.controlReadyMs);
  const cli = summary(g.cliMs);
  const start = summary(g.startMs);
  const overFloor = summary(g.startMs.map((x) => x - floor));
  const rssIdle = summary(g.rssIdleKiB.map(mib));
  const loadRows = g.underLoad.flatMap((l) => {
    const s = summary(l.readyMs);
    return [
      row(`(c) USR2 → \`MAINPID=\` sent, under load, ${MODE_LABEL[l.mode]}`, ms0(s), `≤ 2 × idle (a) = ${n(Math.round(2 * usr2.median))} ms`, met(s.median, 2 * usr2.median)),
      row(`(e) master RSS under load, ${MODE_LABEL[l.mode]}: largest sample`, mib1(summary([mib(l.rssMaxKiB)])), `flat: ≤ idle + ${FLAT * 100} % = ${(rssIdle.median * (1 + FLAT)).toFixed(1)} MiB`, met(mib(l.rssMaxKiB), rssIdle.median * (1 + FLAT))),
    ];
  });
  const failed = g.underLoad.map((l) => `${MODE_LABEL[l.mode]} ${n(l.failed)} of ${n(l.requests)}`).join(', ');
  return [
    GOALS_TITLE,
    '',
    `Each figure measured in one run beside the floor: the same 2 workers of \`bench/app/hello.js\` started at once with no manager, until both sent READY=1 (as in section 3). Unless said otherwise baton runs those 2 workers; servers (and the \`baton upgrade\` CLI) on CPU ${c.serverCpu}, the harness and wrk on CPU ${c.loadCpu}. Run ${run.date.slice(0, 10)} on baton ${run.machine.baton}${run.quick ? ' (QUICK pass: too few rounds to quote)' : ''}.`,
    '',
    `- Floor and start: ${c.goalRounds} rounds, each a bare start then a fresh \`bin/baton run\` (spawn to its READY=1 on the harness's NOTIFY_SOCKET); its RSS (VmRSS of the master pid) 1 s later is the idle figure.`,
    `- Idle upgrades: one master, ${c.goalRounds} USR2s, then ${c.goalRounds} upgrade commands on the control socket (what \`baton upgrade\` sends), then ${c.goalRounds} runs of \`bin/baton upgrade -c <config>\` (timed from its spawn to its exit 0, once the new master has taken over); ${c.pauseMs} ms apart, each followed to the new master's pid.`,
    `- Under load, per connection mode: wrk \`-t1 -c${c.connections}\` for ${c.seconds} s with the master's RSS sampled every 250 ms, then ${c.goalLoadUpgrades} USR2s ${c.pauseMs} ms apart under the same load. Failed requests during those upgrades: ${failed}.`,
    `- Reloads and upgrades in a row: 1 worker of \`bench/app/hello.js\` (to keep ${n(c.goalReloads)} reloads short); ${n(c.goalReloads)} HUPs, each waiting for the master's READY=1, and ${n(c.goalUpgrades)} USR2s, each to \`MAINPID=\` and the old master's exit (100 ms apart), following the new pid; RSS sampled 500 ms after every ${times(g.reloads.every, 'reload')} and every ${times(g.upgrades.every, 'upgrade')} (the first sample 1 s after start).`,
    `- 45 MB read as MiB, the unit of the issue's 60.7 (section 4). Figures: median (min–max).`,
    '',
    ...head('goal (issue 12)', 'figure', 'goal', 'met'),
    row(`the floor: 2 workers' own boot, until both sent READY=1`, ms0(summary(g.bootMs)), '–', '–'),
    row('(a) USR2 → `MAINPID=` sent, idle', ms0(usr2), upgradeGoal, met(usr2.median, upgradeLimit)),
    row('(b) upgrade on the control socket → `MAINPID=` sent, idle', ms0(control), upgradeGoal, met(control.median, upgradeLimit)),
    row('(b) `bin/baton upgrade -c <config>`: spawn to its exit 0, idle', ms0(cli), upgradeGoal, met(cli.median, upgradeLimit)),
    row('(b) the same CLI runs: its spawn → `MAINPID=` sent', ms0(summary(g.cliReadyMs)), '–', '–'),
    ...loadRows.filter((_, i) => i % 2 === 0),
    row('(d) master start: spawn of `bin/baton run` → READY=1, minus the floor', ms0(overFloor), `≤ ${START_OVER_FLOOR_MS} ms`, met(overFloor.median, START_OVER_FLOOR_MS)),
    row('(d) the same, raw (spawn → READY=1)', ms0(start), '–', '–'),
    row('(e) master RSS idle, 1 s after start', mib1(rssIdle), `≤ ${RSS_IDLE_MIB} MiB`, met(rssIdle.median, RSS_IDLE_MIB)),
    ...loadRows.filter((_, i) => i % 2 === 1),
    flatRow(`(e) master RSS across ${n(c.goalReloads)} reloads (1 worker)`, g.reloads),
    flatRow(`(e) master RSS across ${n(c.goalUpgrades)} upgrades (1 worker)`, g.upgrades),
    '',
    samples(g.reloads, 'reloads'),
    samples(g.upgrades, 'upgrades (each a new master)'),
  ];
}

module.exports = { GOALS_TITLE, goalsSection };
