import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// workers.count "auto": the CPUs this process may run on, as nproc(1) and Node's
// os.availableParallelism() count them (the affinity mask), bounded by the cgroup v2 CPU quota
// (cpu.max) of this process's cgroup and of every cgroup above it.

const CGROUP_ROOT = '/sys/fs/cgroup';

/** More workers than the config allows (workers.count at most 1024) are never resolved. */
export const MAX_AUTO_COUNT = 1024;

export interface AvailableCpus {
  /** The workers "auto" gives: min(affinity, quota rounded up), at least 1, at most MAX_AUTO_COUNT. */
  count: number;
  /** The CPUs in the affinity mask. */
  affinityCpus: number;
  /** The mask as a list ("0-3,8"); undefined when only its size was known. */
  affinityList?: string;
  /** The tightest cpu.max on the way up (CPUs = quota / period); 'none': no quota; 'no cgroup v2': not read. */
  quota: { cpus: number; file: string } | 'none' | 'no cgroup v2';
}

/** Reads a file's text; throws when it cannot. */
export type ReadText = (file: string) => string;

const readText: ReadText = (file) => fs.readFileSync(file, 'utf8');

/** The number of CPUs in a list such as "0-3,8-11" (Cpus_allowed_list, cpuset.cpus); undefined unless it is one. */
export function parseCpuList(text: string): number | undefined {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (hi < lo) return undefined;
    n += hi - lo + 1;
  }
  return n;
}

/** The CPUs a cgroup v2 cpu.max ("$MAX $PERIOD") allows: quota / period; null for "max" (no quota); undefined unless it is one. */
export function parseCpuMax(text: string): number | null | undefined {
  const m = /^(max|\d+) (\d+)\n?$/.exec(text);
  if (!m || Number(m[2]) <= 0) return undefined;
  return m[1] === 'max' ? null : Number(m[1]) / Number(m[2]);
}

/** The path of the process's cgroup v2 (the "0::" line of /proc/<pid>/cgroup); undefined when it has none. */
export function cgroupV2Path(procCgroup: string): string | undefined {
  return /^0::(\/.*)$/m.exec(procCgroup)?.[1];
}

/** The workers "auto" gives for an affinity mask of `affinityCpus` and a quota of `quotaCpus` (null: none). */
export function autoCount(affinityCpus: number, quotaCpus: number | null): number {
  const byQuota = quotaCpus === null ? Infinity : Math.ceil(quotaCpus);
  return Math.max(1, Math.min(affinityCpus, byQuota, MAX_AUTO_COUNT));
}

/** The tightest cpu.max from the cgroup `cgroup` (a path under the v2 mount) up to the mount itself. */
function tightestQuota(cgroup: string, read: ReadText): AvailableCpus['quota'] {
  const root = CGROUP_ROOT;
  try {
    read(path.join(root, 'cgroup.controllers'));
  } catch {
    return 'no cgroup v2';
  }
  let dir = path.join(root, cgroup);
  // a cgroup outside this namespace's view ("/../x") is bounded by what the view shows
  if (dir !== root && !dir.startsWith(`${root}/`)) dir = root;
  let tightest: AvailableCpus['quota'] = 'none';
  for (;;) {
    const file = path.join(dir, 'cpu.max');
    let cpus: number | null | undefined;
    try {
      cpus = parseCpuMax(read(file));
    } catch {
      /* no cpu controller at this level (or the mount's root, which has no cpu.max) */
    }
    if (typeof cpus === 'number' && (tightest === 'none' || cpus < (tightest as { cpus: number }).cpus)) tightest = { cpus, file };
    if (dir === root) return tightest;
    dir = path.dirname(dir);
  }
}

/**
 * What "auto" finds for this process: its affinity (Cpus_allowed_list of /proc/self/status,
 * else os.availableParallelism(): newer Node versions bound that by the quota themselves, so
 * it is not the first choice) and its cgroup's quota. A string: why it cannot tell.
 */
export function availableCpus(
  read: ReadText = readText,
  // since Node 18.14; null: none (a test's stand-in for a Node without it)
  parallelism: (() => number) | null = os.availableParallelism ?? null,
): AvailableCpus | string {
  let affinityList: string | undefined;
  let affinityCpus: number | undefined;
  let why: string;
  try {
    affinityList = /^Cpus_allowed_list:\s*(\S+)$/m.exec(read('/proc/self/status'))?.[1];
    affinityCpus = affinityList === undefined ? undefined : parseCpuList(affinityList);
    why = 'no Cpus_allowed_list in /proc/self/status';
  } catch (e) {
    why = `cannot read /proc/self/status: ${(e as Error).message}`;
  }
  if (affinityCpus === undefined) {
    affinityList = undefined;
    if (!parallelism) return `${why}, and this Node has no os.availableParallelism()`;
    affinityCpus = parallelism();
  }
  let cgroup: string | undefined;
  try {
    cgroup = cgroupV2Path(read('/proc/self/cgroup'));
  } catch {
    /* no /proc/self/cgroup: a kernel without cgroups */
  }
  const quota = cgroup === undefined ? 'no cgroup v2' : tightestQuota(cgroup, read);
  return { count: autoCount(affinityCpus, typeof quota === 'object' ? quota.cpus : null), affinityCpus, affinityList, quota };
}

/** "4 CPUs, affinity 0-3, cgroup quota none", as check and status show it. */
export function describeCpus(c: AvailableCpus): string {
  const plural = (n: number) => `${n} CPU${n === 1 ? '' : 's'}`;
  const affinity = c.affinityList ?? plural(c.affinityCpus);
  let quota: string;
  if (typeof c.quota === 'string') quota = c.quota === 'none' ? 'none' : 'not read (no cgroup v2 at /sys/fs/cgroup)';
  else quota = `${+c.quota.cpus.toFixed(3)} CPU (${c.quota.file})${c.quota.cpus < 1 ? ': less than one CPU, still 1 worker' : ''}`;
  const capped = Math.min(c.affinityCpus, typeof c.quota === 'object' ? Math.ceil(c.quota.cpus) : Infinity) > MAX_AUTO_COUNT;
  return `${plural(c.count)}, affinity ${affinity}, cgroup quota ${quota}${capped ? `; at most ${MAX_AUTO_COUNT} workers` : ''}`;
}
