import path from 'node:path';
import type { Argv } from 'yargs';
import { VERSION } from '../version';

// Each command's code is evaluated when that command runs (--version and the client commands
// skip the master). In the bundle these import()s stay inside the one file, so
// the master still loads no code from disk after start.
const client = () => import('./client-commands');
const COMMANDS: Record<string, (file: string, o: Record<string, unknown>) => Promise<number>> = {
  run: (file) => import('./run').then((m) => m.runCommand(file)),
  check: (file) => import('./check').then((m) => m.checkCommand(file)),
  reload: (file) => client().then((m) => m.reloadCommand(file)),
  upgrade: (file) => client().then((m) => m.upgradeCommand(file)),
  status: (file, o) => client().then((m) => m.statusCommand(file, o.json === true)),
  stop: (file, o) => client().then((m) => m.stopCommand(file, o.fast === true)),
};

/**
 * The command and config file when argv is exactly `COMMAND -c FILE` (or `--config FILE`,
 * `--config=FILE`), what a unit's ExecStart= and most scripts give: it then runs without
 * yargs (~20 ms and ~2 MB of a start that an upgrade waits for). Anything else, options and
 * mistakes included, goes through yargs.
 */
export function plainCommand(argv: string[]): { command: string; file: string } | undefined {
  const [command, flag, value] = argv;
  if (!Object.hasOwn(COMMANDS, command)) return undefined;
  const file = argv.length === 3 && (flag === '-c' || flag === '--config') ? value : argv.length === 2 && flag.startsWith('--config=') ? flag.slice(9) : undefined;
  return file && !file.startsWith('-') ? { command, file: path.normalize(file) } : undefined;
}

/** Exit codes: 0 ok, 1 failure, 2 usage, 3 not running (status), 78 config error (EX_CONFIG). */
export function main(argv: string[]): void {
  const plain = plainCommand(argv);
  if (plain) finish(COMMANDS[plain.command](plain.file, {}));
  else void import('yargs').then(({ default: yargs }) => commands(yargs(argv)));
}

const finish = (p: Promise<number>) =>
  p.then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`baton: ${e.message}\n`);
      process.exit(1);
    },
  );

function commands(y: Argv): void {
  const configOpt = {
    alias: 'c',
    type: 'string',
    demandOption: true,
    describe: 'the JSON config file',
    // given twice, the last one counts (yargs' own `normalize` throws on a repeated option)
    coerce: (v: string | string[]) => path.normalize([v].flat().pop() ?? ''),
  } as const;
  y.scriptName('baton')
    .usage('$0 <command> -c FILE\n\nZero-downtime process manager for network services under systemd.')
    .command('run', 'run the master in the foreground (what systemd runs)', (y) => y.option('config', configOpt), (a) => finish(COMMANDS.run(a.config, a)))
    .command('check', 'validate the config and exit (0 good, 78 bad), like nginx -t', (y) => y.option('config', configOpt), (a) =>
      finish(COMMANDS.check(a.config, a)),
    )
    .command('reload', 'reload the config and wait: exit 0 once the new generation serves', (y) => y.option('config', configOpt), (a) =>
      finish(COMMANDS.reload(a.config, a)),
    )
    .command('upgrade', 'binary upgrade and wait: exit 0 once the new master has taken over', (y) => y.option('config', configOpt), (a) =>
      finish(COMMANDS.upgrade(a.config, a)),
    )
    .command(
      'status',
      'show the master, its generations, workers and listeners',
      (y) => y.option('config', configOpt).option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
      (a) => finish(COMMANDS.status(a.config, a)),
    )
    .command(
      'stop',
      'stop gracefully and wait until the master has exited',
      (y) => y.option('config', configOpt).option('fast', { type: 'boolean', default: false, describe: 'no drain: kill the workers at once' }),
      (a) => finish(COMMANDS.stop(a.config, a)),
    )
    .demandCommand(1, 'give a command: run, check, reload, upgrade, status or stop')
    .strict()
    .version(VERSION)
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) {
        process.stderr.write(`baton: ${err.message}\n`);
        process.exit(1);
      }
      process.stderr.write(`${y.help()}\n`);
      process.stderr.write(`\nbaton: ${msg}\n`);
      process.exit(2);
    })
    .parse();
}
