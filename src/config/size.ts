/** "256K" → 262144: K, M or G, 1024-based (as systemd's ReceiveBuffer=); a number or a bare numeral is bytes. */
export function bytes(v: number | string): number {
  if (typeof v === 'number') return v;
  const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[v.slice(-1)] ?? 1;
  return Number(unit === 1 ? v : v.slice(0, -1)) * unit;
}
