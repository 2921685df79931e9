import fs from 'node:fs';
import path from 'node:path';

// The Node adapter (workers.adapt): a module preloaded into Node workers with
// NODE_OPTIONS=--require, so that an app that only calls listen(port) and handles no signal
// serves on baton's sockets and stops without losing a request (src/adapt/node-preload.ts).
// Only the process baton started (LISTEN_PID) takes the sockets, as sd_listen_fds(3) has it;
// when that process is a launcher (npm start), it names itself in BATON_ADAPT_OWNER and passes
// them on, and the first Node process below it that is not a launcher takes them.

/** Set by the adapter in a launcher that was given the sockets, for its descendants. */
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

/** `--require FILE`, quoted as Node's NODE_OPTIONS parser takes it (double quotes, backslash escapes), so any path goes. */
function requireOption(file: string): string {
  return `--require "${file.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** NODE_OPTIONS with `--require FILE` after what `env` has already: Node reads it in every Node process the worker starts. */
export function adapterEnv(env: NodeJS.ProcessEnv, file: string): Record<string, string> {
  const before = (env.NODE_OPTIONS ?? '').trim();
  return { NODE_OPTIONS: `${before ? `${before} ` : ''}${requireOption(file)}` };
}

/** NODE_OPTIONS as it was before adapterEnv added `file`; undefined when nothing is left. */
export function withoutAdapter(nodeOptions: string | undefined, file: string): string | undefined {
  const opt = requireOption(file);
  if (!nodeOptions?.endsWith(opt)) return nodeOptions;
  return nodeOptions.slice(0, -opt.length).trim() || undefined;
}
