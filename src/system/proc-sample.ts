// STAND-IN until i24-seen's src/system/proc-sample.ts is merged (same API, I24.md): take theirs.
import fs from 'node:fs';
import { readProcStat } from './proc-stat';

export interface GroupSample {
  pgid: number;
  processes: number;
  rssBytes: number;
  pssBytes: number | null;
  /** utime + stime of all members, clock ticks */
  cpuTicks: number;
}

export const TICKS_PER_SECOND = 100;
const PAGE = 4096;

function kB(text: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** One pass over /proc: every process of each group, its memory (PSS where smaps_rollup reads) and CPU summed. */
export function sampleGroups(pgids: readonly number[]): Map<number, GroupSample> {
  const out = new Map<number, GroupSample>();
  const wanted = new Set(pgids);
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const p of pids) {
    const st = readProcStat(Number(p));
    if (!st || !wanted.has(st.pgid)) continue;
    const g = out.get(st.pgid) ?? { pgid: st.pgid, processes: 0, rssBytes: 0, pssBytes: 0, cpuTicks: 0 };
    g.processes++;
    g.cpuTicks += st.cpuTicks;
    let rollup: string | undefined;
    try {
      rollup = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
    } catch {
      /* another user's, or gone */
    }
    const pss = rollup === undefined ? undefined : kB(rollup, 'Pss');
    let rss = rollup === undefined ? undefined : kB(rollup, 'Rss');
    if (rss === undefined) {
      try {
        rss = Number(fs.readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * PAGE;
      } catch {
        rss = 0;
      }
    }
    g.rssBytes += rss;
    g.pssBytes = pss === undefined || g.pssBytes === null ? null : g.pssBytes + pss;
    out.set(st.pgid, g);
  }
  return out;
}
