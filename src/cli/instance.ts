import path from 'node:path';

/** Where the packages keep each instance's config: `baton status api` is `-c /etc/baton/api.json`. */
export const INSTANCE_DIR = '/etc/baton';

/**
 * The config file an instance argument names: a path (it has a `/` or ends in .json) as it is,
 * a bare name (as in baton@NAME) as INSTANCE_DIR/NAME.json; undefined for anything else.
 */
export function instanceFile(arg: string): string | undefined {
  if (arg.includes('/') || arg.endsWith('.json')) return path.normalize(arg);
  return /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/.test(arg) ? path.join(INSTANCE_DIR, `${arg}.json`) : undefined;
}
