import { spawn } from 'node:child_process';

/** Why `baton check` refused: what it said, and the signal that killed it, if one did. */
export interface PrecheckProblem {
  reason: string;
  signal?: NodeJS.Signals;
}

/** Runs `baton check` with the code now on disk; resolves with null when it accepts the config. */
export function precheck(program: string[], cwd: string, env: NodeJS.ProcessEnv, configFile: string): Promise<PrecheckProblem | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = program;
    const p = spawn(cmd, [...args, 'check', '-c', configFile], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.once('error', (e) => resolve({ reason: `cannot run ${cmd}: ${e.message}` }));
    p.once('exit', (code, signal) => {
      if (code === 0) return resolve(null);
      // baton's own message, or else the end of whatever crashed (a stack trace's last lines)
      const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
      const own = out.indexOf('baton: ');
      const said = own >= 0 ? out.slice(own + 7).trim() : lines.slice(-3).join(' / ');
      resolve({ reason: `${said.slice(0, 2000) || 'no output'} (baton check exited with ${code ?? signal})`, ...(signal ? { signal } : {}) });
    });
  });
}
