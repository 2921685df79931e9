import { loadConfig } from '../config/load';
import { ConfigError, EX_CONFIG, type Config } from '../config/types';
import { createLogger, writeStderr, type Logger } from '../log/logger';
import { Master } from '../master/master';
import { closeOnExecFrom3, ListenFdsError, takeListenFds, type InheritedFd } from '../contract/listen-fds';
import { reportEarlyFailure, takeUpgradeEnv, UpgradeEnvError, type UpgradeEnv } from '../contract/upgrade-env';
import { reportInternalErrors } from './internal-errors';

export async function runCommand(file: string): Promise<number> {
  closeOnExecFrom3();
  let upgrade: UpgradeEnv | null = null;
  /** `told`: what a predecessor hears, when it is not `message`. */
  const refuse = (code: number, message: string, told = message): number => {
    writeStderr(`baton: ${message}\n`);
    if (upgrade) reportEarlyFailure(upgrade, told);
    return code;
  };
  let cfg: Config;
  let inherited: InheritedFd[];
  try {
    upgrade = takeUpgradeEnv();
    cfg = loadConfig(file);
    inherited = takeListenFds();
  } catch (e) {
    // a successor's predecessor (its log, `baton upgrade`) says whose refusal it is
    if (e instanceof ConfigError) return refuse(e.exitCode, `config error in ${e.message}`, `the code on disk refuses the config: config error in ${e.message}`);
    if (e instanceof ListenFdsError || e instanceof UpgradeEnvError) return refuse(EX_CONFIG, `bad inherited sockets: ${e.message}`);
    throw e;
  }
  let logger: Logger;
  try {
    logger = createLogger(cfg.log, cfg.name);
  } catch (e) {
    // log.file refused or not opened (checked in loadConfig too: this is what changed since, or EACCES)
    return refuse(EX_CONFIG, `config error in ${cfg.file}: ${(e as Error).message}`);
  }
  reportInternalErrors(logger);
  const master = new Master({
    config: cfg,
    logger,
    inherited,
    upgrade,
    // read afresh from disk by the successor: a package upgrade runs its new code
    program: [process.execPath, ...process.execArgv, process.argv[1]],
    args: process.argv.slice(2),
    cwd: process.cwd(),
  });
  try {
    return await master.start();
  } catch (e) {
    logger.error(`cannot start: ${(e as Error).message}`);
    return 1;
  }
}
