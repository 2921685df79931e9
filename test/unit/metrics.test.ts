// The metric families from a status answer (src/metrics/families.ts): one series per slot even
// while a recycle runs two workers in it; the exposition's escaping and histogram form.
import type { StatusReply, WorkerStatus } from '../../src/contract/control';
import { Counters } from '../../src/metrics/counters';
import { render } from '../../src/metrics/exposition';
import { families } from '../../src/metrics/families';

const worker = (slot: number, pid: number, state: WorkerStatus['state'], rss: number, recycling?: 'memory'): WorkerStatus => ({
  slot, pid, state, restarts: 0, uptimeMs: 1000, memory: { rssBytes: rss, pssBytes: rss / 2, processes: 1 }, cpu: { percent: 1, seconds: pid / 1000 }, ...(recycling && { recycling }),
});

const status = (workers: WorkerStatus[]): StatusReply =>
  ({
    ok: true, name: 'a "quoted"\nname', version: '1.2.3', pid: 1, config: '/x.json', phase: 'running', uptimeMs: 1, generation: 3,
    generations: [{ id: 3, state: 'serving', count: 2, workers }], listeners: [], lastReload: null,
    upgrade: { state: 'none', last: null }, statusLine: '', log: { target: 'stderr', dropped: 0, failing: null, lastError: null },
  }) as StatusReply;

describe('metric families', () => {
  test('a slot being recycled (its old worker and the replacement) is one series: the old, ready one speaks for it until the replacement holds the slot', () => {
    const text = render(families(status([worker(0, 100, 'ready', 5000, 'memory'), worker(0, 101, 'starting', 7000), worker(1, 102, 'ready', 6000)]), new Counters()));
    const rss = text.split('\n').filter((l) => l.startsWith('baton_worker_resident_memory_bytes{'));
    expect(rss).toEqual(['baton_worker_resident_memory_bytes{generation="3",slot="0"} 5000', 'baton_worker_resident_memory_bytes{generation="3",slot="1"} 6000']);
    // every series once
    const series = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
    expect(new Set(series).size).toBe(series.length);
    expect(text).toContain('baton_workers{state="starting"} 1');
  });

  test('label values escaped; a histogram cumulative with +Inf, sum and count', () => {
    const c = new Counters();
    c.reload('ok', 300);
    c.reload('reverted', 7000);
    const text = render(families(status([]), c));
    expect(text).toContain('baton_info{version="1.2.3",name="a \\"quoted\\"\\nname"} 1');
    expect(text).toContain('baton_reload_duration_seconds_bucket{le="0.5"} 1');
    expect(text).toContain('baton_reload_duration_seconds_bucket{le="10"} 2');
    expect(text).toContain('baton_reload_duration_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('baton_reload_duration_seconds_sum 7.3');
    expect(text).toContain('baton_reloads_total{result="reverted"} 1');
  });
});
