import fs from 'node:fs';
import path from 'node:path';

// The Node adapter (workers.adapt): a module preloaded into Node workers with
// NODE_OPTIONS=--require, so that an app that only calls listen(port) and handles no signal
// serves on baton's sockets and stops without losing a request (src/adapt/node-preload.ts).
// NODE_OPTIONS reaches every Node process of the worker, so `npm start` works too: the
// process baton starts (npm, LISTEN_PID) names itself in BATON_ADAPT_OWNER, and the app it
// starts below it takes the sockets it inherited from there.

/** Set by the adapter in the process that was given the sockets, for its descendants. */
export const ENV_ADAPT_OWNER = 'BATON_ADAPT_OWNER';

/** Programs that are Node (or run it with the worker's NODE_OPTIONS): workers.adapt "auto" adapts these. */
const NODE_PROGRAMS = /^(node|nodejs|node\d+|npm|npx|pnpm|yarn)$/;

/** Whether workers.adapt (`auto` by default) preloads the adapter into a worker started as `command`. */
export function adaptsNode(adapt: 'auto' | 'node' | 'off', command: readonly string[]): boolean {
  if (adapt !== 'auto') return adapt === 'node';
  return NODE_PROGRAMS.test(path.basename(command[0] ?? ''));
}

/** Where the adapter bundle is: beside the master's bundle (dist/bundle/adapt.js, /usr/lib/baton/dist/bundle/). */
export const adapterFile: string | undefined = [
  path.join(__dirname, 'adapt.js'),
  path.join(__dirname, '..', 'bundle', 'adapt.js'),
  path.join(__dirname, '..', '..', 'dist', 'bundle', 'adapt.js'),
].find((f) => fs.existsSync(f));

/**
 * NODE_OPTIONS with `--require FILE` after what `env` has already: Node reads it in every
 * Node process the worker starts. Quoted as Node's NODE_OPTIONS parser takes it (double
 * quotes, backslash escapes), so any path goes.
 */
export function adapterEnv(env: NodeJS.ProcessEnv, file: string): Record<string, string> {
  const quoted = `"${file.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  const before = (env.NODE_OPTIONS ?? '').trim();
  return { NODE_OPTIONS: `${before ? `${before} ` : ''}--require ${quoted}` };
}
