// workers.count "auto" (issue 24 item 4): the affinity and cgroup v2 cpu.max readings, on fixture files.
import { autoCount, availableCpus, describeCpus, parseCpuList, parseCpuMax, type AvailableCpus } from '../../src/system/cpus';

/** A reader of the fixture files `files`; any other path is missing, as readFileSync says it. */
function fixture(files: Record<string, string>): (file: string) => string {
  return (file) => {
    if (file in files) return files[file];
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), { code: 'ENOENT' });
  };
}

const STATUS = 'Name:\tnode\nCpus_allowed:\tf\nCpus_allowed_list:\t0-3\nMems_allowed_list:\t0\n';
const V2 = { '/proc/self/status': STATUS, '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n' };
const inService = (cpuMax: Record<string, string>) => ({
  ...V2,
  '/proc/self/cgroup': '0::/system.slice/baton@api.service\n',
  ...Object.fromEntries(Object.entries(cpuMax).map(([dir, text]) => [`/sys/fs/cgroup${dir}/cpu.max`, text])),
});
const noNodeFallback = null;

describe('the CPU readings', () => {
  test.each([
    ['0-3', 4],
    ['0-3,8-11', 8],
    ['5', 1],
    ['0,2,4-5\n', 4],
    ['', undefined],
    ['3-1', undefined],
    ['0-3,x', undefined],
  ])('Cpus_allowed_list %j holds %p CPUs', (text, n) => {
    expect(parseCpuList(text)).toBe(n);
  });

  test.each([
    ['max 100000\n', null],
    ['50000 100000\n', 0.5],
    ['150000 100000\n', 1.5],
    ['400000 100000', 4],
    ['', undefined],
    ['max', undefined],
    ['100000 0\n', undefined],
    ['-1 100000\n', undefined],
  ])('cpu.max %j allows %p CPUs', (text, cpus) => {
    expect(parseCpuMax(text)).toBe(cpus);
  });

  test.each([
    [4, null, 4],
    [4, 0.5, 1],
    [4, 0.01, 1],
    [4, 1.5, 2],
    [4, 2, 2],
    [2, 8, 2],
    [4096, null, 1024],
  ])('affinity %p CPUs and a quota of %p: %p workers', (affinity, quota, n) => {
    expect(autoCount(affinity, quota)).toBe(n);
  });
});

describe('availableCpus: the affinity bounded by the tightest cpu.max from the cgroup up', () => {
  test('no quota anywhere: the affinity (the text status and check show)', () => {
    const c = availableCpus(fixture(inService({ '/system.slice/baton@api.service': 'max 100000\n', '/system.slice': 'max 100000\n' })), noNodeFallback) as AvailableCpus;
    expect(c).toEqual({ count: 4, affinityCpus: 4, affinityList: '0-3', quota: 'none' });
    expect(describeCpus(c)).toBe('4 CPUs, affinity 0-3, cgroup quota none');
  });

  test("a quota on an ancestor bounds it (rounded up); the tightest on the way wins, the service's own or not", () => {
    const parent = availableCpus(fixture(inService({ '/system.slice/baton@api.service': 'max 100000\n', '/system.slice': '150000 100000\n' })), noNodeFallback) as AvailableCpus;
    expect(parent).toMatchObject({ count: 2, quota: { cpus: 1.5, file: '/sys/fs/cgroup/system.slice/cpu.max' } });
    expect(describeCpus(parent)).toBe('2 CPUs, affinity 0-3, cgroup quota 1.5 CPU (/sys/fs/cgroup/system.slice/cpu.max)');
    const own = availableCpus(fixture(inService({ '/system.slice/baton@api.service': '200000 100000\n', '/system.slice': '300000 100000\n' })), noNodeFallback) as AvailableCpus;
    expect(own).toMatchObject({ count: 2, quota: { cpus: 2, file: '/sys/fs/cgroup/system.slice/baton@api.service/cpu.max' } });
  });

  test('a quota above the affinity does not raise it', () => {
    const c = availableCpus(fixture(inService({ '/system.slice': '800000 100000\n' })), noNodeFallback) as AvailableCpus;
    expect(c).toMatchObject({ count: 4, quota: { cpus: 8 } });
  });

  test('a quota of less than one CPU still gives one worker, and says so', () => {
    const c = availableCpus(fixture(inService({ '/system.slice/baton@api.service': '50000 100000\n' })), noNodeFallback) as AvailableCpus;
    expect(c.count).toBe(1);
    expect(describeCpus(c)).toBe('1 CPU, affinity 0-3, cgroup quota 0.5 CPU (/sys/fs/cgroup/system.slice/baton@api.service/cpu.max): less than one CPU, still 1 worker');
  });

  test('a cgroup path outside the view (/..) reads the mount root only', () => {
    const files = { ...V2, '/proc/self/cgroup': '0::/../../x\n', '/sys/fs/cgroup/cpu.max': '100000 100000\n', '/sys/x/cpu.max': '50000 100000\n' };
    expect(availableCpus(fixture(files), noNodeFallback)).toMatchObject({ count: 1, quota: { cpus: 1, file: '/sys/fs/cgroup/cpu.max' } });
  });

  test('cgroup v1 only, or v2 not mounted at /sys/fs/cgroup (a hybrid host): the affinity, and the text says the quota was not read', () => {
    const v1 = { '/proc/self/status': STATUS, '/proc/self/cgroup': '1:cpu,cpuacct:/\n' };
    const hybrid = { '/proc/self/status': STATUS, '/proc/self/cgroup': '1:cpu,cpuacct:/\n0::/\n', '/sys/fs/cgroup/unified/cgroup.controllers': '' };
    for (const files of [v1, hybrid]) {
      const c = availableCpus(fixture(files), noNodeFallback) as AvailableCpus;
      expect(c).toEqual({ count: 4, affinityCpus: 4, affinityList: '0-3', quota: 'no cgroup v2' });
      expect(describeCpus(c)).toBe('4 CPUs, affinity 0-3, cgroup quota not read (no cgroup v2 at /sys/fs/cgroup)');
    }
  });

  test("no /proc: Node's os.availableParallelism() gives the affinity's size", () => {
    const c = availableCpus(fixture({}), () => 3) as AvailableCpus;
    expect(c).toEqual({ count: 3, affinityCpus: 3, affinityList: undefined, quota: 'no cgroup v2' });
    expect(describeCpus(c)).toBe('3 CPUs, affinity 3 CPUs, cgroup quota not read (no cgroup v2 at /sys/fs/cgroup)');
  });

  test('neither /proc nor os.availableParallelism(): why, not a number', () => {
    expect(availableCpus(fixture({}), noNodeFallback)).toBe(
      "cannot read /proc/self/status: ENOENT: no such file or directory, open '/proc/self/status', and this Node has no os.availableParallelism()",
    );
    expect(availableCpus(fixture({ '/proc/self/status': 'Name:\tnode\n' }), noNodeFallback)).toBe('no Cpus_allowed_list in /proc/self/status, and this Node has no os.availableParallelism()');
  });

  test('more CPUs than workers.count allows: 1024, and it says so', () => {
    const c = availableCpus(fixture({ '/proc/self/status': 'Cpus_allowed_list:\t0-2047\n' }), noNodeFallback) as AvailableCpus;
    expect(c.count).toBe(1024);
    expect(describeCpus(c)).toBe('1024 CPUs, affinity 0-2047, cgroup quota not read (no cgroup v2 at /sys/fs/cgroup); at most 1024 workers');
  });
});
