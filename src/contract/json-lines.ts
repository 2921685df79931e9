import type { Readable } from 'node:stream';

// The framing of the control socket and of the upgrade channel: one JSON value per line,
// each ended by '\n' (JSON.stringify never writes a raw newline inside a value).

/** One value as it travels: its JSON and the newline that ends it. */
export function frame(value: unknown): string {
  return JSON.stringify(value) + '\n';
}

/** One line read: its value, or the text that is not JSON (what to do with it is the caller's choice). */
export type JsonLine = { ok: true; value: unknown } | { ok: false; text: string; error: string };

export interface JsonLineHandlers {
  line(l: JsonLine): void;
  /** More than `maxLine` characters without a newline: reading has stopped; the stream is the caller's to close. */
  tooLong(): void;
}

/**
 * Reads `stream` (as UTF-8) line by line, giving each complete line to `on.line`, parsed.
 * Returns a function that stops reading; a handler may call it, and no line is given after.
 */
export function readJsonLines(stream: Readable, maxLine: number, on: JsonLineHandlers): () => void {
  let buf = '';
  let stopped = false;
  const stop = () => {
    stopped = true;
    buf = '';
    stream.off('data', onData);
  };
  const onData = (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0 && !stopped; nl = buf.indexOf('\n')) {
      if (nl > maxLine) break;
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      on.line(parseLine(text));
    }
    // what is left is one line, complete (the loop stopped at it) or not
    if (!stopped && buf.length > maxLine) {
      stop();
      on.tooLong();
    }
  };
  stream.setEncoding('utf8');
  stream.on('data', onData);
  return stop;
}

function parseLine(text: string): JsonLine {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, text, error: (e as Error).message };
  }
}
