'use strict';
// Shards of about equal length for `make test` (test/helpers/jest-shards.sh runs them side by
// side, each under its own subreaper): jest's own --shard cuts the list by count, and three
// files take half of the time. Seconds each file took alone on these 2 cores (make test,
// serial); a file not listed counts DEFAULT_S. Within a shard the longest runs first.
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const SECONDS = {
  'process/node-adapter': 100, 'process/client-commands': 49, 'process/upgrade': 39, 'process/notify': 12,
  'process/pool-worker-unkillable': 12, 'process/harness-safety-net': 11, 'process/pool-watchdog': 8,
  'process/logging': 8, 'process/reload': 11, 'process/long-lived': 8, 'process/fd-store': 8, 'process/hostile-sockets': 7,
  'process/stop': 7, 'process/upgrade-control-socket': 5, 'process/stderr-socket': 5, 'process/pool-workers': 5,
};
const DEFAULT_S = 3;
const secondsOf = (t) => SECONDS[path.relative(path.join(__dirname, '..'), t.path).replace(/\.test\.ts$/, '')] ?? DEFAULT_S;

class BalancedSequencer extends Sequencer {
  /** Greedy: longest first, each to the shard with the least so far. */
  shard(tests, { shardIndex, shardCount }) {
    const load = new Array(shardCount).fill(0);
    const mine = [];
    for (const t of [...tests].sort((a, b) => secondsOf(b) - secondsOf(a) || (a.path < b.path ? -1 : 1))) {
      const i = load.indexOf(Math.min(...load));
      load[i] += secondsOf(t);
      if (i === shardIndex - 1) mine.push(t);
    }
    return mine;
  }

  sort(tests) {
    return [...tests].sort((a, b) => secondsOf(b) - secondsOf(a) || (a.path < b.path ? -1 : 1));
  }
}

module.exports = BalancedSequencer;
