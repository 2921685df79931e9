import fs from 'node:fs';
import path from 'node:path';

// A launcher starts the app rather than being it (`npm start`): given the sockets, it passes
// them on. Told by what the main module is, the package it belongs to (its nearest
// package.json, Node's own package scope), not by a name an app could have.

/** The packages whose programs start an app from package.json's scripts (corepack: its shims for pnpm and yarn). */
const LAUNCHERS = new Set(['npm', 'pnpm', 'yarn', 'corepack']);

/** Whether this process's main module (`process.argv[1]`: npm-cli.js, npx-cli.js ...) is a launcher's. */
export function isLauncher(main: string | undefined = process.argv[1]): boolean {
  if (!main) return false;
  try {
    let dir = path.dirname(fs.realpathSync(main));
    for (;;) {
      const manifest = path.join(dir, 'package.json');
      if (fs.existsSync(manifest)) {
        const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown };
        return typeof name === 'string' && LAUNCHERS.has(name);
      }
      if (dir === path.dirname(dir)) return false;
      dir = path.dirname(dir);
    }
  } catch {
    return false;
  }
}
