import { EX_CONFIG } from '../config/types';
import { createLogger } from '../log/logger';
import { Arbiter } from '../master/arbiter';
import { ListenFdsError, takeListenFds, type InheritedFd } from '../sockets/listen-fds';
import { configOrExit } from './load';

export async function runCommand(file: string): Promise<number> {
  const cfg = configOrExit(file);
  let inherited: InheritedFd[];
  try {
    inherited = takeListenFds();
  } catch (e) {
    if (e instanceof ListenFdsError) {
      process.stderr.write(`baton: bad inherited sockets: ${e.message}\n`);
      return EX_CONFIG;
    }
    throw e;
  }
  const logger = createLogger(cfg.log, cfg.name);
  // The master's job is to keep the service up: a bug in it is logged, not fatal to the workers.
  process.on('uncaughtException', (e) => logger.error(`internal error: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => logger.error(`internal error (promise): ${(e as Error)?.stack ?? e}`));
  const arbiter = new Arbiter({ config: cfg, logger, inherited, inheritedFrom: 'systemd' });
  try {
    return await arbiter.run();
  } catch (e) {
    logger.error(`cannot start: ${(e as Error).message}`);
    return 1;
  }
}
