// Why a client command found no master where the config says it would be, in words an operator
// can act on: the config file does not exist; a master of another user (root's, sudo forgotten)
// has the instance's runtime folder; a master runs with this config file but listens elsewhere
// (`name` or `runtimeDir` changed since it started); a stale pidfile. Read-only, best effort:
// what cannot be read here is left out.
import fs from 'node:fs';
import path from 'node:path';
import type { MasterLocation } from '../config/load';
import { instanceFile } from './instance';

/** The lines to add to "no baton master is running for …". */
export function whyNoMaster(loc: MasterLocation): string[] {
  const out: string[] = [];
  if (!fs.existsSync(loc.file)) {
    out.push(`the config file ${loc.file} does not exist: give the file the master was started with (baton@NAME runs /etc/baton/NAME.json; \`baton status NAME\` says the same)`);
  }
  const uid = process.geteuid?.() ?? 0;
  if (uid !== 0) {
    const who = (n: number) => (n === 0 ? 'root' : `uid ${n}`);
    const own = statOf(loc.runtimeDir);
    const rootDir = path.join('/run/baton', loc.name);
    const st = statOf(rootDir);
    if (own && own.uid !== uid) out.push(`the runtime folder ${loc.runtimeDir} is uid ${own.uid}'s: its master runs as ${who(own.uid)}, and only ${who(own.uid)} may ask it; try sudo`);
    else if (st && st.uid !== uid) out.push(`${rootDir} exists and is uid ${st.uid}'s: a master running as ${who(st.uid)} (baton@${loc.name} under systemd) keeps its control socket there; try sudo`);
  }
  for (const m of mastersOf(loc.file)) {
    if (m.sockets.includes(path.join(loc.runtimeDir, 'control.sock'))) continue;
    const where = m.sockets.length ? `its control socket is ${m.sockets.join(', ')}` : 'its control socket cannot be read from here';
    out.push(`pid ${m.pid} runs \`baton run\` with this config file, but not where it now says (${loc.runtimeDir}): were \`name\` or \`runtimeDir\` changed since it started? ${where}; put them back to reach it, or stop it with kill -TERM ${m.pid}`);
  }
  return out;
}

function statOf(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Processes running `baton run -c FILE` (or --config) for this file, and the unix sockets they
 * listen on named control.sock: read from /proc (only processes this user may read).
 */
function mastersOf(file: string): Array<{ pid: number; sockets: string[] }> {
  const out: Array<{ pid: number; sockets: string[] }> = [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  let unix: Map<string, string> | undefined;
  for (const d of pids) {
    const pid = Number(d);
    if (pid === process.pid) continue;
    let argv: string[];
    let cwd: string;
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      cwd = fs.readlinkSync(`/proc/${d}/cwd`);
    } catch {
      continue;
    }
    const run = argv.indexOf('run');
    if (run < 0 || !argv.some((a) => /(^|\/)baton(\.js)?$/.test(a))) continue;
    const i = argv.findIndex((a, k) => k > run && (a === '-c' || a === '--config' || a.startsWith('--config=')));
    // `baton run INSTANCE` (or a path) names its config without -c
    const given = i >= 0 ? (argv[i].startsWith('--config=') ? argv[i].slice('--config='.length) : argv[i + 1]) : instanceFile(argv[run + 1] ?? '');
    if (!given || path.resolve(cwd, given) !== file) continue;
    unix ??= unixSockets();
    out.push({ pid, sockets: socketInodes(pid).flatMap((ino) => (unix!.get(ino)?.endsWith('/control.sock') ? [unix!.get(ino)!] : [])) });
  }
  return out;
}

/** /proc/net/unix: inode -> path, for the sockets that have one. */
function unixSockets(): Map<string, string> {
  const m = new Map<string, string>();
  try {
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8 && f[7].startsWith('/')) m.set(f[6], f[7]);
    }
  } catch {
    /* no /proc */
  }
  return m;
}

function socketInodes(pid: number): string[] {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const l = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(l);
        return m ? [m[1]] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}
