/**
 * How far into its soak a failure came, in the words the reload's and the upgrade's answers
 * share (`…, 2150 ms into the 10000 ms soak`): `until` is when the soak of `ms` ends.
 */
export function intoSoak(reason: string, ms: number, until: number, now: number): string {
  return `${reason}, ${Math.max(0, ms - (until - now))} ms into the ${ms} ms soak`;
}
