// Text from outside baton (a worker's STATUS= or notify fields, error messages) is not trusted
// to be harmless on a terminal or in a log: escape sequences could rewrite the screen, retitle
// the window or hide lines, and a newline would make a log line of its own.

/** C0 controls, DEL and C1 controls (U+0080–U+009F: a terminal may read U+009B as CSI). */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;
/** The backslash too: in a log, `\x1b` a worker sent as text must not read as an escaped ESC. */
const LOG_UNSAFE = /[\u0000-\u001f\\\u007f-\u009f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Every control character shown as \xHH; `keepNewlines` for multi-line messages. */
export function terminalSafe(s: string, keepNewlines = false): string {
  return s.replace(keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, hex);
}

/** How much of one worker-supplied string a log line shows. */
export const WORKER_TEXT_MAX = 200;

/**
 * A worker's string for a log line: every control character and backslash as \xHH, cut at
 * `max` characters (never inside an escape) with `… (N characters)` saying how long it was.
 */
export function workerText(s: string, max = WORKER_TEXT_MAX): string {
  const safe = s.replace(LOG_UNSAFE, hex);
  if (safe.length <= max) return safe;
  let cut = max;
  const esc = safe.lastIndexOf('\\', cut - 1);
  if (esc > cut - 4) cut = esc;
  else if (/[\ud800-\udbff]/.test(safe[cut - 1])) cut--; // not half of a surrogate pair
  return `${safe.slice(0, cut)}… (${s.length} characters)`;
}
