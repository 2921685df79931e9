import fs from 'node:fs';
import path from 'node:path';

// dist/version.js and src/version.ts both sit one level below package.json. Read once at
// start-up: a package upgrade replaces the file under a running master.
export const VERSION: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
