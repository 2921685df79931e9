// The metrics endpoint (metrics.listen) of a real master: what `promtool check metrics` says of
// its answer, a real Prometheus server (Debian's `prometheus`) scraping it every second and
// seeing the workers change across a reload, an upgrade that hands the address over, a unix
// socket, and scrapers that never finish their request while the master reloads.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { baton, batonAsync, cleanup, get, getUnix, killTree, nodeWorker, ready, startMaster, tmpdir, waitFor, writeConfig, type Master, freePort } from '../helpers/proc';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const noPromtool = has('promtool') ? '' : 'promtool is not installed (Debian package prometheus; make test installs it as root)';
const noPrometheus = has('prometheus') ? '' : 'prometheus is not installed (Debian package prometheus; make test installs it as root)';
const named = (title: string, why: string) => `${title}${why ? ` [SKIPPED: ${why}]` : ''}`;


/** The value of `name{labels}` in an exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics (metrics.listen)', () => {
  let m: Master | undefined;
  let prom: ChildProcess | undefined;
  afterEach(async () => {
    await killTree(prom);
    prom = undefined;
    await cleanup(m);
    m = undefined;
  });

  async function serving(workers: Record<string, unknown> = {}) {
    const dir = tmpdir();
    const port = await freePort();
    const cfg = writeConfig(dir, {
      name: 'metrics',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      metrics: { listen: `127.0.0.1:${port}` },
      workers: { command: nodeWorker(), count: 2, readyTimeoutMs: 10000, stopTimeoutMs: 10000, ...workers },
    });
    m = startMaster(cfg);
    await ready(m);
    return { dir, cfg, port, scrape: async () => (await get(port, '/metrics')).body };
  }

  (noPromtool ? test.skip : test)(named('promtool check metrics finds nothing wrong in the answer (after a reload: counters, a histogram, per-worker series)', noPromtool), async () => {
    const { cfg, scrape } = await serving();
    expect(baton(['reload', '-c', cfg]).code).toBe(0);
    // the old workers exit after the reload's answer; an answer is built at most once a second
    const text = await waitFor('the old workers\' exits counted', async () => {
      const t = await scrape();
      return sample(t, 'baton_worker_exits_total{reason="reload"}') === 2 ? t : undefined;
    });
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
    expect(sample(text, 'baton_reloads_total{result="ok"}')).toBe(1);
    expect(sample(text, 'baton_reload_duration_seconds_count')).toBe(1);
    expect(sample(text, 'baton_generation')).toBe(2);
    expect(sample(text, 'baton_phase{phase="running"}')).toBe(1);
    expect(sample(text, 'baton_worker_exits_total{reason="reload"}')).toBe(2);
    expect(sample(text, 'baton_workers{state="ready"}')).toBe(2);
    expect(sample(text, 'baton_worker_resident_memory_bytes{generation="2",slot="0"}')).toBeGreaterThan(1 << 20);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1 << 20);
    expect(text).toMatch(/^baton_info\{version="[^"]+",name="metrics"\} 1$/m);
  });

  (noPrometheus ? test.skip : test)(named('a real Prometheus scraping every second sees the worker count change across a reload, and the reload counted', noPrometheus), async () => {
    const { dir, cfg, port } = await serving();
    const promPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: baton\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`,
    );
    const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
    prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const query = async (q: string): Promise<number | undefined> => {
      const r = await get(promPort, `/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
      if (!r || r.status !== 200) return undefined;
      const v = JSON.parse(r.body).data?.result?.[0]?.value?.[1];
      return v === undefined ? undefined : Number(v);
    };
    const says = (q: string, want: number) =>
      waitFor(`Prometheus to say ${q} = ${want} (its log: ${path.join(dir, 'prometheus.log')})`, async () => (await query(q)) === want, 30000, 250);
    await says('up{job="baton"}', 1);
    await says('baton_workers{state="ready"}', 2);
    writeConfig(dir, { ...JSON.parse(fs.readFileSync(cfg, 'utf8')), workers: { ...JSON.parse(fs.readFileSync(cfg, 'utf8')).workers, count: 3 } });
    expect(baton(['reload', '-c', cfg]).code).toBe(0);
    await says('baton_workers_wanted', 3);
    await says('baton_workers{state="ready"}', 3);
    await says('baton_reloads_total{result="ok"}', 1);
    await says('baton_generation', 2);
  });

  test('a binary upgrade hands the address over: the successor answers at the same address once confirmed', async () => {
    const { cfg, scrape } = await serving();
    const before = sample(await scrape(), 'process_start_time_seconds');
    const r = baton(['upgrade', '-c', cfg]);
    expect(r.code).toBe(0);
    await waitFor('the successor to answer the scrapes', async () => {
      const text = await scrape().catch(() => '');
      return sample(text, 'baton_generation') === 2 ? text : undefined;
    });
    expect(sample(await scrape(), 'baton_upgrades_total{result="ok"}')).toBe(0);
    expect(sample(await scrape(), 'process_start_time_seconds')).toBeGreaterThanOrEqual(before!);
    expect(baton(['stop', '-c', cfg]).code).toBe(0);
  });

  test('on a unix socket: mode 0660, answers, gone after the stop', async () => {
    const dir = tmpdir();
    const sock = path.join(dir, 'metrics.sock');
    const cfg = writeConfig(dir, {
      name: 'metrics-unix',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      metrics: { listen: sock },
      workers: { command: nodeWorker(), count: 1, readyTimeoutMs: 10000 },
    });
    m = startMaster(cfg);
    await ready(m);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o660);
    const r = await getUnix(sock, '/metrics');
    expect(r.status).toBe(200);
    expect(sample(r.body, 'baton_workers{state="ready"}')).toBe(1);
    expect((await getUnix(sock, '/')).status).toBe(404);
    m.proc.kill('SIGTERM');
    await m.exited;
    expect(fs.existsSync(sock)).toBe(false);
  });

  test('32 scrapers that never finish their request, and one that never reads: a reload is not held up, and the endpoint answers once they are dropped', async () => {
    const { cfg, port, scrape } = await serving();
    const stuck = await Promise.all(
      Array.from({ length: 32 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
          resolve(s);
        });
        s.on('error', () => undefined);
      })),
    );
    const reader = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => res.pause());
    reader.on('error', () => undefined);
    try {
      const r = await batonAsync(['reload', '-c', cfg]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.ms).toBeLessThan(10000);
      expect((await m!.status()).generation).toBe(2);
    } finally {
      for (const s of stuck) s.destroy();
      reader.destroy();
    }
    const text = await waitFor('the endpoint to answer again', () => scrape().catch(() => undefined), 20000);
    expect(sample(text, 'baton_reloads_total{result="ok"}')).toBe(1);
  });
});
