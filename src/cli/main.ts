import path from 'node:path';
import type { Argv } from 'yargs';
import { VERSION } from '../version';
import { instanceFile } from './instance';
import type { ClientOptions } from './client-commands';

// Each command's code is evaluated when that command runs (--version and the client commands
// skip the master). In the bundle these import()s stay inside the one file, so
// the master still loads no code from disk after start.
const client = () => import('./client-commands');
/** The commands; `waits`: a client command, which waits for the master at most --timeout SECONDS. */
const COMMANDS: Record<string, { run: (file: string, o: ClientOptions) => Promise<number>; waits?: true }> = {
  run: { run: (file) => import('./run').then((m) => m.runCommand(file)) },
  check: { run: (file) => import('./check').then((m) => m.checkCommand(file)) },
  reload: { waits: true, run: (file, o) => client().then((m) => m.reloadCommand(file, o)) },
  upgrade: { waits: true, run: (file, o) => client().then((m) => m.upgradeCommand(file, o)) },
  status: { waits: true, run: (file, o) => client().then((m) => m.statusCommand(file, o)) },
  top: { waits: true, run: (file, o) => import('./top').then((m) => m.topCommand(file, o)) },
  stop: { waits: true, run: (file, o) => client().then((m) => m.stopCommand(file, o)) },
};

/** --timeout's value: seconds above 0 (fractions too), or undefined when it is not that. */
function seconds(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d*\.?\d+$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * The command, config file and timeout when argv is `COMMAND -c FILE` (or `--config FILE`,
 * `--config=FILE`), with `--timeout SECONDS` (or `--timeout=SECONDS`) for a client command:
 * what a unit's ExecStart= and most scripts give. It then runs without yargs (~20 ms and
 * ~2 MB of a start that an upgrade waits for). Anything else, other options and mistakes
 * included, goes through yargs.
 */
export function plainCommand(argv: string[]): { command: string; file: string; timeout?: number } | undefined {
  const [command, ...rest] = argv;
  if (!Object.hasOwn(COMMANDS, command)) return undefined;
  const given = new Map<string, string>();
  // `baton status api`: the instance first, options after it
  if (rest.length > 0 && !rest[0].startsWith('-')) {
    const file = instanceFile(rest[0]);
    if (!file) return undefined;
    given.set('config', file);
    rest.shift();
  }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const eq = /^--(config|timeout)=/.exec(a);
    const key = eq ? eq[1] : a === '-c' || a === '--config' ? 'config' : a === '--timeout' ? 'timeout' : undefined;
    const value = eq ? a.slice(eq[0].length) : rest[++i];
    if (!key || value === undefined || given.has(key) || (key === 'timeout' && !COMMANDS[command].waits)) return undefined;
    given.set(key, value);
  }
  const file = given.get('config');
  const timeout = given.has('timeout') ? seconds(given.get('timeout')) : undefined;
  if (!file || file.startsWith('-') || (given.has('timeout') && timeout === undefined)) return undefined;
  return { command, file: path.normalize(file), ...(timeout !== undefined && { timeout }) };
}

/** Exit codes: 0 ok, 1 failure, 2 usage, 3 not running (status), 75 no answer in time (EX_TEMPFAIL), 78 config error (EX_CONFIG). */
export function main(argv: string[]): void {
  const plain = plainCommand(argv);
  if (plain) finish(COMMANDS[plain.command].run(plain.file, { timeout: plain.timeout }));
  else void import('yargs').then(({ default: yargs }) => commands(yargs(argv)));
}

/**
 * Exits with `code` once stdout and stderr have taken everything written to them: a pipe
 * takes 64 KiB at once, and Node queues the rest, which process.exit() would throw away.
 * A reader that went away (EPIPE) loses the rest; the exit code stays.
 */
function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  let pending = 2;
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', () => undefined);
    s.write('', () => --pending === 0 && process.exit(code));
  }
}

const finish = (p: Promise<number>) =>
  p.then(
    (code) => exitWhenFlushed(code),
    (e: Error) => {
      process.stderr.write(`baton: ${e.message}\n`);
      exitWhenFlushed(1);
    },
  );

function commands(y: Argv): void {
  const configOpt = {
    alias: 'c',
    type: 'string',
    describe: 'the JSON config file (or give the instance: `baton status api` is -c /etc/baton/api.json)',
    // given twice, the last one counts (yargs' own `normalize` throws on a repeated option)
    coerce: (v: string | string[]) => {
      const last = [v].flat().pop() ?? '';
      // `-c` with nothing after it: yargs gives '', which path.normalize() would make '.'
      if (last === '') throw new Error("-c: give the config file's path (or the instance's name instead of -c: baton status api)");
      return path.normalize(last);
    },
  } as const;
  const timeoutOpt = {
    type: 'string',
    describe: "wait at most SECONDS for the master (default: status and top 10; reload, upgrade, stop: the config's own timeouts + 30)",
    coerce: (v: string | string[]) => {
      const last = [v].flat().pop();
      const s = seconds(last);
      if (s === undefined) throw new Error(`--timeout: '${last}' is not a number of seconds above 0 (such as 30 or 2.5)`);
      return s;
    },
  } as const;
  // a client command's options: the config file (or the instance) and how long to wait
  const config = (y: Argv) =>
    y
      .positional('instance', { type: 'string', describe: 'baton@INSTANCE: /etc/baton/INSTANCE.json (or a config file path)' })
      .option('config', configOpt)
      .check((a) => {
        const inst = a.instance as string | undefined;
        // a string: a usage error with that message (exit 2)
        if (inst !== undefined && a.config !== undefined) return 'give the instance or -c FILE, not both';
        if (inst === undefined && a.config === undefined) return 'give the config file (-c FILE) or the instance (baton status api)';
        if (inst !== undefined && instanceFile(inst) === undefined) return `'${inst}' is neither an instance name (letters, digits, _ . : @ -) nor a config file path`;
        return true;
      });
  const waits = (y: Argv) => config(y).option('timeout', timeoutOpt);
  // yargs goes on to the command's handler after .fail() returns: a usage error runs nothing
  let refused = false;
  const run = (name: string) => (a: { config?: string; instance?: string }) => {
    if (!refused) void finish(COMMANDS[name].run(a.config ?? instanceFile(a.instance!)!, a as ClientOptions));
  };
  y.scriptName('baton')
    .usage('$0 <command> -c FILE  (or: $0 <command> INSTANCE, for /etc/baton/INSTANCE.json)\n\nZero-downtime process manager for network services under systemd.')
    .command('run [instance]', 'run the master in the foreground (what systemd runs)', config, run('run'))
    .command('check [instance]', 'validate the config and exit (0 good, 78 bad), like nginx -t', config, run('check'))
    .command('reload [instance]', 'reload the config and wait: exit 0 once the new generation serves', waits, run('reload'))
    .command('upgrade [instance]', 'binary upgrade and wait: exit 0 once the new master has taken over', waits, run('upgrade'))
    .command(
      'status [instance]',
      'show the master, its generations, workers and listeners',
      (y: Argv) => waits(y).option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
      run('status'),
    )
    .command('top [instance]', "each worker's memory and CPU, refreshed every 2 s (q quits); plain lines when piped", waits, run('top'))
    .command(
      'stop [instance]',
      'stop gracefully and wait until the master has exited',
      (y: Argv) => waits(y).option('fast', { type: 'boolean', default: false, describe: 'no drain: kill the workers at once' }),
      run('stop'),
    )
    .demandCommand(1, 'give a command: run, check, reload, upgrade, status, top or stop')
    .strict()
    .version(VERSION)
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100))
    // yargs' own errors (YError: a value an option refuses) are usage errors too
    .fail((msg, err, y) => {
      // once: a refused value and the check after it both land here
      if (refused) return;
      refused = true;
      // a check's refusal comes as a string, a value an option refuses as a YError: usage errors
      if (err instanceof Error && err.name !== 'YError') {
        process.stderr.write(`baton: ${err.message}\n`);
        return exitWhenFlushed(1);
      }
      process.stderr.write(`${y.help()}\n`);
      process.stderr.write(`\nbaton: ${msg}\n`);
      exitWhenFlushed(2);
    })
    .parse();
}
