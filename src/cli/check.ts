import { configOrExit } from './config-or-exit';
import { ConfigError, type Config } from '../config/types';
import { refusedOptions } from '../sockets/options';
import { describeCpus } from '../system/cpus';

export async function checkCommand(file: string): Promise<number> {
  const cfg = configOrExit(file);
  const refused = refusedListenerOptions(cfg);
  if (refused.length) {
    const e = new ConfigError(cfg.file, refused);
    process.stderr.write(`baton: config error in ${e.message}\n`);
    return e.exitCode;
  }
  const listeners = cfg.listeners === undefined ? 'every inherited socket' : cfg.listeners.map((l) => `${l.name}=${l.bind?.text ?? '(inherited)'}`).join(', ');
  const auto = cfg.workers.countAuto ? ` (workers.count "auto": ${describeCpus(cfg.workers.countAuto)})` : '';
  process.stdout.write(
    `baton: config ${cfg.file} is valid: ${cfg.workers.count} x ${JSON.stringify(cfg.workers.command)}${auto}, listeners: ${listeners || 'none'}\n`,
  );
  return 0;
}

/** Options the kernel refuses (no privilege, no such interface or algorithm): `run` finds them only when it binds. */
function refusedListenerOptions(cfg: Config): string[] {
  return (cfg.listeners ?? []).flatMap((l, i) => {
    if (!l.bind) return [];
    const family = l.bind.kind === 'tcp' ? l.bind.family : 0;
    return refusedOptions(family, l.options).map((m) => `/listeners/${i}/${m}`);
  });
}
