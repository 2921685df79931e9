import fs from 'node:fs';
import path from 'node:path';

/**
 * baton's package.json: one level above dist/version.js and src/version.ts, two above the
 * bundles in dist/cli/ and dist/serve/. Read once at start-up: a package upgrade replaces
 * the file under a running master.
 */
function readVersion(): string {
  for (const up of ['..', '../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, up, 'package.json'), 'utf8'));
      if (pkg.name === 'baton') return pkg.version;
    } catch {
      /* try further up */
    }
  }
  return 'unknown';
}

export const VERSION: string = readVersion();
