import { spawn } from 'node:child_process';

/** Runs `baton check` with the code now on disk; resolves with what it said when it fails. */
export function precheck(program: string[], cwd: string, env: NodeJS.ProcessEnv, configFile: string): Promise<string | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = program;
    const p = spawn(cmd, [...args, 'check', '-c', configFile], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.once('error', (e) => resolve(`cannot run ${cmd}: ${e.message}`));
    p.once('exit', (code, signal) => {
      if (code === 0) return resolve(null);
      // baton's own message, or else the end of whatever crashed (a stack trace's last lines)
      const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
      const own = out.indexOf('baton: ');
      const said = own >= 0 ? out.slice(own + 7).trim() : lines.slice(-3).join(' / ');
      resolve(`${said.slice(0, 2000) || 'no output'} (baton check exited with ${code ?? signal})`);
    });
  });
}
