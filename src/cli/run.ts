import { EX_CONFIG } from '../config/types';
import { createLogger, writeStderr } from '../log/logger';
import { Arbiter } from '../master/arbiter';
import { ListenFdsError, takeListenFds, type InheritedFd } from '../sockets/listen-fds';
import { takeUpgradeEnv, UpgradeEnvError, type UpgradeEnv } from '../upgrade/env';
import { reportInternalErrors } from './internal-errors';
import { configOrExit } from './load';

export async function runCommand(file: string): Promise<number> {
  const cfg = configOrExit(file);
  let inherited: InheritedFd[];
  let upgrade: UpgradeEnv | null;
  try {
    upgrade = takeUpgradeEnv();
    inherited = takeListenFds();
  } catch (e) {
    if (e instanceof ListenFdsError || e instanceof UpgradeEnvError) {
      writeStderr(`baton: bad inherited sockets: ${e.message}\n`);
      return EX_CONFIG;
    }
    throw e;
  }
  const logger = createLogger(cfg.log, cfg.name);
  reportInternalErrors(logger);
  const arbiter = new Arbiter({
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
    return await arbiter.run();
  } catch (e) {
    logger.error(`cannot start: ${(e as Error).message}`);
    return 1;
  }
}
