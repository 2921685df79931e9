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
  for (const w of warnings(cfg)) process.stderr.write(`baton: warning: ${w}\n`);
  return 0;
}

/** systemd's default TimeoutStartSec=, which bounds ExecReload= (`baton reload`) too. */
const SYSTEMD_TIMEOUT_MS = 90_000;

/** What may be right for some unit and is wrong under baton@.service's defaults: said, not refused (check cannot see the unit). */
function warnings(cfg: Config): string[] {
  // milliseconds meant as seconds (readyTimeoutMs: 30) pass the schema and fail later, confusingly
  const w = cfg.workers;
  const short = [
    ['/workers/readyTimeoutMs', w.readyTimeoutMs],
    ['/workers/stopTimeoutMs', w.stopTimeoutMs],
    ['/workers/watchdogMs', w.watchdogMs],
    ['/upgrade/timeoutMs', cfg.upgrade.timeoutMs],
    ['/reload/soakMs', cfg.reload.soakMs],
  ].flatMap(([key, v]) =>
    (v as number) > 0 && (v as number) < 1000
      ? [`${key}: ${v} ms is under a second: the value is in milliseconds (${v} s would be ${(v as number) * 1000})`]
      : [],
  );
  const reloadMs = cfg.workers.readyTimeoutMs + cfg.reload.soakMs;
  if (cfg.reload.soakMs === 0 || reloadMs <= SYSTEMD_TIMEOUT_MS) return short;
  return [
    ...short,
    `/reload/soakMs: a reload may take workers.readyTimeoutMs + reload.soakMs = ${reloadMs / 1000} s, over systemd's default TimeoutStartSec= ` +
      `(${SYSTEMD_TIMEOUT_MS / 1000} s), which bounds ExecReload= too: systemctl reload would fail on its timeout while the soak goes on. ` +
      'Shorten them, or raise TimeoutStartSec= in a drop-in (systemctl edit baton@NAME)',
  ];
}

/** Options the kernel refuses (no privilege, no such interface or algorithm): `run` finds them only when it binds. */
function refusedListenerOptions(cfg: Config): string[] {
  return (cfg.listeners ?? []).flatMap((l, i) => {
    if (!l.bind) return [];
    const family = l.bind.kind === 'tcp' ? l.bind.family : 0;
    return refusedOptions(family, l.options).map((m) => `/listeners/${i}/${m}`);
  });
}
