import { loadConfig } from '../config/load';
import { ConfigError, type Config } from '../config/types';

/** Loads the config for a command, printing a config error and exiting 78 on failure. */
export function configOrExit(file: string): Config {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`baton: config error in ${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
}
