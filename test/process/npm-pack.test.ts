// What `npm pack` makes of the checkout (after `make build`): a package that `npm install -g`
// turns into a working `baton` command, and that an app outside this repository installs to
// `require('baton/worker')`. Both installs are offline: the package has no dependencies (its
// code is the two bundles and the native addon).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, cleanupAll, get, portOf, ready, startMaster, tmpdir, writeConfig, type Master } from '../helpers/proc';

const npm = (cwd: string, ...args: string[]) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--offline'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('npm pack', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('npm install -g gives a working baton; an app that installs the tarball serves with baton/worker under that baton', async () => {
    dir = tmpdir();
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    npm(ROOT, 'pack', '--pack-destination', dir);
    const tgz = path.join(dir, `baton-${version}.tgz`);
    expect(fs.existsSync(tgz)).toBe(true);

    const prefix = path.join(dir, 'global');
    npm(dir, 'install', '-g', '--prefix', prefix, tgz);
    const cli = path.join(prefix, 'bin', 'baton');
    expect(execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
    // what it installed is the bundles alone: no node_modules under it
    expect(fs.existsSync(path.join(prefix, 'lib', 'node_modules', 'baton', 'node_modules'))).toBe(false);

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    npm(app, 'install', tgz);
    fs.writeFileSync(
      path.join(app, 'server.js'),
      `const http = require('node:http');
const { serve } = require('baton/worker');
serve(http.createServer((req, res) => res.end('app ' + require.resolve('baton/worker') + '\\n')));
`,
    );
    const cfg = writeConfig(app, { name: 'npm-app', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: ['node', 'server.js'], count: 1 } });
    m = startMaster(cfg, { baton: cli });
    const s = await ready(m);
    const r = await get(portOf(s));
    expect(r.body).toBe(`app ${fs.realpathSync(path.join(app, 'node_modules', 'baton', 'dist', 'bundle', 'worker.js'))}\n`);
  });
});
