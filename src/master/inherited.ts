import fs from 'node:fs';
import type { Config, ListenerConfig } from '../config/types';
import type { InheritedFd } from '../contract/listen-fds';
import type { ListenerSource } from '../contract/upgrade-env';
import type { Logger } from '../log/logger';
import { applyRetunes, closeListener, inheritedListeners, planListeners, type Listener, type ListenerPlan } from '../sockets/listeners';
import { socketFile } from '../sockets/options';
import type { FdStore } from './fd-store';

// Start-up: the sockets a master inherits (LISTEN_FDS: from systemd's socket activation, from
// systemd's FD store, or from a predecessor master) as listeners, planned against the config,
// and the FD store told which of them systemd holds.

export interface InheritedContext {
  log: Logger;
  fdStore: FdStore;
  /** NOTIFY_SOCKET is set: a socket named like a configured listener came back from the store. */
  underSystemd: boolean;
  /** The config's fdStore, else whether systemd has a store (FdStore.on). */
  storeOn: boolean;
}

/**
 * A plain start's listeners: the inherited ones kept, the rest bound. Nobody else serves the
 * held sockets, so the ones not kept (another address, changed bind-time options, gone from
 * the config) leave the store and are closed before anything is bound: systemd's stored copy
 * would keep their address taken.
 */
export async function startListeners(fds: InheritedFd[], cfg: Config, ctx: InheritedContext): Promise<Listener[]> {
  const held = heldListeners(fds, (f) => inheritedSource(f.name, cfg.listeners, ctx.underSystemd), ctx.log);
  const release = (gone: Array<{ l: Listener; why: string }>) => {
    for (const { l, why } of gone) {
      ctx.log.warn(`inherited socket '${l.name}' ${why}: closing it`);
      if (ctx.underSystemd) ctx.fdStore.release(l.name);
      closeListener(l);
    }
  };
  const plan = await planListeners(held, cfg.listeners, { release, inUseWaitMs: 2000 });
  applyRetunes(plan, ctx.log);
  if (ctx.underSystemd) ctx.fdStore.mayHold(held.filter((l) => l.source !== 'systemd' && plan.active.includes(l)));
  ctx.fdStore.sync(plan.active, ctx.storeOn);
  return plan.active;
}

/**
 * A successor's plan: its predecessor's sockets (`sources`, per fd, from the upgrade
 * environment) against its config; the predecessor still serves them, so nothing is released
 * and the plan takes effect once confirmed (Succession.adopt). The store may hold the
 * predecessor's (the dropped ones leave it once confirmed).
 */
export async function successorPlan(fds: InheritedFd[], sources: readonly ListenerSource[], cfg: Config, ctx: InheritedContext): Promise<ListenerPlan> {
  const held = heldListeners(fds, (_f, i) => sources[i] ?? 'systemd', ctx.log);
  const plan = await planListeners(held, cfg.listeners, {});
  if (ctx.storeOn) ctx.fdStore.mayHold([...held.filter((l) => l.source !== 'systemd'), ...plan.removed]);
  return plan;
}

/** The inherited fds as listeners, one per socket: `sourceOf` gets each fd with its index among `fds`. */
function heldListeners(fds: InheritedFd[], sourceOf: (f: InheritedFd, i: number) => ListenerSource, log: Logger): Listener[] {
  const sources = new Map(fds.map((f, i) => [f, sourceOf(f, i)]));
  const distinct = distinctSockets(fds, (m) => log.warn(m));
  const held = inheritedListeners(distinct, (i) => sources.get(distinct[i])!);
  forgetGoneFiles(held);
  return held;
}

/**
 * Where an inherited socket comes from, for a master not started by a predecessor. Under
 * systemd (`ours`: NOTIFY_SOCKET set; store on or not: one stored by an earlier run comes
 * back also after `fdStore: false`), a socket named like a configured listener that has an
 * address is one baton bound and stored (taken as bound from the config: kept while its
 * address is asked for); any other is a .socket unit's (used whatever its address).
 */
function inheritedSource(name: string, listeners: ListenerConfig[] | undefined, ours: boolean): ListenerSource {
  return ours && listeners?.some((l) => l.name === name && l.bind) ? 'config' : 'systemd';
}

/**
 * The inherited fds without the ones that are the same socket as an earlier one (fstat dev and
 * inode), closed: a .socket unit's socket that also went into the store comes back twice.
 */
function distinctSockets(fds: InheritedFd[], log: (message: string) => void): InheritedFd[] {
  const seen = new Map<string, InheritedFd>();
  return fds.filter((f) => {
    const st = fs.fstatSync(f.fd);
    const key = `${st.dev}:${st.ino}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, f);
      return true;
    }
    log(`inherited fd ${f.fd} (name '${f.name}') is the same socket as fd ${first.fd} (name '${first.name}'): closing the duplicate`);
    fs.closeSync(f.fd);
    return false;
  });
}

/**
 * Unix sockets back from the store: one whose file is still there (a socket of our euid, not
 * followed if a link) is ours to remove when a reload drops it; one whose file is gone
 * (systemd empties RuntimeDirectory= on a restart) or not ours can no longer be trusted to
 * reach it, so it matches no address and the config's is bound anew.
 */
function forgetGoneFiles(held: Listener[]): void {
  for (const l of held) {
    if (l.source !== 'config' || l.spec?.kind !== 'unix') continue;
    if (socketFile(l.spec.path)?.uid === process.geteuid!()) l.ownedPath = l.spec.path;
    else l.spec = undefined;
  }
}
