import fs from 'node:fs';
import path from 'node:path';

/**
 * Finds a worker's program the way execvp() will: a name with a slash is a path (relative
 * to the worker's cwd), otherwise it is looked up in PATH. Returns the absolute path, or a
 * string starting with '!' that explains why there is none.
 */
export function findExecutable(cmd: string, cwd: string, PATH: string | undefined): string {
  if (cmd === '') return `!the program name is empty`;
  const candidates = cmd.includes('/')
    ? [path.resolve(cwd, cmd)]
    : (PATH || '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean).map((d) => path.resolve(cwd, d, cmd));
  for (const c of candidates) {
    try {
      const st = fs.statSync(c);
      if (st.isFile()) {
        fs.accessSync(c, fs.constants.X_OK);
        return c;
      }
    } catch {
      /* try the next one */
    }
  }
  return cmd.includes('/') ? `!'${cmd}' does not exist or is not an executable file` : `!'${cmd}' was not found in PATH (${PATH ?? ''})`;
}
