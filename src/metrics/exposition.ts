// The Prometheus text exposition format, version 0.0.4 (what `promtool check metrics` reads and
// every Prometheus scrapes). Written by hand: prom-client costs the master 8.2 MiB and 50-80 ms
// to load (measured in lite mode), over the 3 MiB this endpoint may cost.

export type Labels = Readonly<Record<string, string | number>>;

export interface Family {
  /** baton_… or process_…; a counter's ends in _total. */
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'histogram';
  samples: Array<{ labels?: Labels; value: number; suffix?: '_bucket' | '_sum' | '_count' }>;
}

/** A label value as the format wants it: backslash, double quote and newline escaped. */
const escapeValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function value(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labels(l?: Labels): string {
  if (!l) return '';
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeValue(String(v))}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function render(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${s.suffix ?? ''}${labels(s.labels)} ${value(s.value)}`);
  }
  return `${out.join('\n')}\n`;
}

/** A histogram's samples: cumulative buckets (le), +Inf, sum and count. */
export function histogramSamples(h: { bounds: readonly number[]; counts: readonly number[]; sum: number; count: number }): Family['samples'] {
  return [
    ...h.bounds.map((b, i) => ({ suffix: '_bucket' as const, labels: { le: String(b) }, value: h.counts[i] })),
    { suffix: '_bucket' as const, labels: { le: '+Inf' }, value: h.count },
    { suffix: '_sum' as const, value: h.sum },
    { suffix: '_count' as const, value: h.count },
  ];
}
