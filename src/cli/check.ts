import { configOrExit } from './config-or-exit';

export async function checkCommand(file: string): Promise<number> {
  const cfg = configOrExit(file);
  const listeners = cfg.listeners === undefined ? 'every inherited socket' : cfg.listeners.map((l) => `${l.name}=${l.bind?.text ?? '(inherited)'}`).join(', ');
  process.stdout.write(
    `baton: config ${cfg.file} is valid: ${cfg.workers.count} x ${JSON.stringify(cfg.workers.command)}, listeners: ${listeners || 'none'}\n`,
  );
  return 0;
}
