import type { Config } from '../config/types';
import { controlSocketPath } from '../contract/control';
import type { UpgradeEnv } from '../contract/upgrade-env';
import type { SuccessorMessage } from '../contract/upgrade-channel';
import type { ControlServer } from '../control/server';
import type { Logger } from '../log/logger';
import { writePidfile } from '../system/pidfile';
import { applyRetunes, closeListener, type Listener, type ListenerPlan } from '../sockets/listeners';
import type { SystemdNotifier } from '../systemd/notifier';
import { Predecessor } from '../upgrade/predecessor';
import type { MasterEvent } from './events';
import type { FdStore } from './fd-store';

export interface SuccessionContext {
  log: Logger;
  post(e: MasterEvent): void;
  /** Kept quiet until confirmed: the predecessor is systemd's main process meanwhile. */
  systemd: Pick<SystemdNotifier, 'muted'>;
  fdStore: FdStore;
}

/**
 * The successor's side of a binary upgrade (docs/contract.md, "Binary upgrade", step 4 and 6),
 * from its start until its predecessor confirms it: the link to the predecessor (`confirmed` and
 * `aborted` come from it), systemd kept quiet, the inherited listeners its config dropped
 * (the predecessor still serves them: closed once confirmed) and the option changes on sockets
 * the predecessor still serves (set once confirmed). The master holds one while it is an
 * unconfirmed successor.
 */
export class Succession {
  private readonly predecessor: Predecessor;
  /** Inherited listeners the config no longer has, closed once confirmed. */
  private dropOnConfirm: Listener[] = [];
  /** Live option changes on kept sockets, set once confirmed. */
  private retunes: ListenerPlan | null = null;

  constructor(
    env: UpgradeEnv,
    private readonly ctx: SuccessionContext,
  ) {
    ctx.systemd.muted = true;
    this.predecessor = new Predecessor(env.channelFd, {
      onConfirm: (nextGeneration) => ctx.post({ kind: 'confirmed', nextGeneration }),
      onAbort: (reason) => ctx.post({ kind: 'aborted', reason }),
    });
  }

  /** Whether new workers wait at the start gate (until the predecessor has heard of them). */
  get gated(): boolean {
    return !this.predecessor.confirmed;
  }

  /** Its control socket waits beside the predecessor's and replaces it when confirmed. */
  controlPath(cfg: Config): string {
    return `${controlSocketPath(cfg.runtimeDir)}.${process.pid}`;
  }

  /** Said before they exist: a successor killed at any point leaves the predecessor the list. */
  willMake(controlPath: string, cfg: Config): void {
    const unixPaths = (cfg.listeners ?? []).flatMap((l) => (l.bind?.kind === 'unix' ? [l.bind.path] : []));
    void this.send({ t: 'files', sockets: [controlPath, ...unixPaths], pidfile: cfg.pidfile });
  }

  /**
   * The plan of the inherited listeners takes effect only in part until confirmed: the ones it
   * removes that the predecessor serves wait (their socket files included), the others close
   * now; its option changes wait. Returns the listeners to serve.
   */
  adopt(plan: ListenerPlan): Listener[] {
    for (const l of plan.removed) {
      if (l.source === 'predecessor') {
        if (l.spec?.kind === 'unix') l.ownedPath = l.spec.path;
        this.dropOnConfirm.push(l);
        continue;
      }
      this.ctx.log.warn(`inherited socket '${l.name}' is not among the configured listeners: closing it`);
      closeListener(l);
    }
    this.retunes = plan;
    return plan.active;
  }

  send(m: SuccessorMessage): Promise<void> {
    return this.predecessor.send(m);
  }

  /** Ready to serve: the pidfile written (it may throw), then the predecessor told; it may confirm now. */
  ready(generation: number, pidfile: string): void {
    writePidfile(pidfile);
    void this.send({ t: 'ready', generation });
  }

  /** Tells the predecessor why this successor gives up; resolves once said. */
  fail(reason: string): Promise<void> {
    return this.predecessor.fail(reason);
  }

  /**
   * Confirmed: this master is the main process. It speaks to systemd, closes what its config
   * dropped, sets the option changes, stores its sockets (every one: the predecessor's store
   * may have been off, or it an older baton), owns the unix socket files it inherited and
   * takes over control.sock.
   */
  confirm(listeners: Listener[], control: ControlServer, cfg: Config, storeOn: boolean): void {
    this.ctx.systemd.muted = false;
    for (const l of this.dropOnConfirm.splice(0)) {
      this.ctx.log.info(`listener '${l.name}' is no longer configured: closing it`);
      closeListener(l);
    }
    if (this.retunes) applyRetunes(this.retunes, this.ctx.log);
    this.retunes = null;
    this.ctx.fdStore.sync(listeners, storeOn, true);
    // not before: a successor that fails would take them from the predecessor, which serves on
    for (const l of listeners) if (l.source === 'predecessor' && l.spec?.kind === 'unix') l.ownedPath = l.spec.path;
    try {
      control.adopt(controlSocketPath(cfg.runtimeDir));
    } catch (e) {
      this.ctx.log.warn(`cannot take over the control socket: ${(e as Error).message}`);
    }
  }

  /** Stopped unconfirmed: the predecessor keeps serving the dropped listeners, files included. */
  closeUnconfirmed(): void {
    for (const l of this.dropOnConfirm.splice(0)) closeListener({ ...l, ownedPath: undefined });
  }
}
