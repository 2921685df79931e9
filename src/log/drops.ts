import type { LogSinkStatus } from '../contract/control';

export function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && err.code) return `${err.code}${err.syscall ? ` (${err.syscall})` : ''}`;
  return String((e as Error)?.message ?? e);
}

/**
 * Counts the lines a sink could not write. A failing sink drops lines and says so here,
 * never through itself; once it writes again, `onRecovered` gets one line saying how many
 * were lost.
 */
export class Drops {
  target = '';
  private total = 0;
  private outage: { since: string; dropped: number; error: string } | null = null;
  private last: { at: string; error: string } | null = null;

  constructor(private readonly onRecovered: (message: string) => void) {}

  dropped(e: unknown, lines = 1): void {
    const at = new Date().toISOString();
    const error = errorText(e);
    this.total += lines;
    this.last = { at, error };
    this.outage ??= { since: at, dropped: 0, error };
    this.outage.dropped += lines;
    this.outage.error = error;
  }

  written(): void {
    if (!this.outage) return;
    const o = this.outage;
    this.outage = null;
    this.onRecovered(`log: ${o.dropped} line(s) dropped since ${o.since} (${this.target}: ${o.error}); writing again`);
  }

  status(): LogSinkStatus {
    return { target: this.target, dropped: this.total, failing: this.outage && { ...this.outage }, lastError: this.last };
  }
}
