// baton's journal events: the catalog shipped in the packages explains every MESSAGE_ID the code
// sends; the native-protocol datagram as journald reads it (a real socket receives it); the
// JSON log format carries the same fields. The real journald: test/e2e/checks.sh.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EVENT_IDS, eventFields } from '../../src/contract/journal-events';
import { native } from '../../src/native';
import { Drops } from '../../src/log/drops';
import { journalDatagram, JournalSink } from '../../src/log/journal-sink';
import { waitFor } from '../helpers/proc';

const CATALOG = path.join(__dirname, '..', '..', 'packaging', 'baton.catalog');

/** The catalog's entries: id -> its header and body. */
function catalog(): Map<string, string> {
  const out = new Map<string, string>();
  let id: string | undefined;
  for (const line of fs.readFileSync(CATALOG, 'utf8').split('\n')) {
    const m = /^-- ([0-9a-f]{32})$/.exec(line);
    if (m) out.set((id = m[1]), '');
    else if (id && !line.startsWith('#')) out.set(id, `${out.get(id)}${line}\n`);
  }
  return out;
}

/** Parses a native-protocol datagram back into its fields (the binary form included). */
function parse(buf: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(10, i);
    const line = buf.subarray(i, nl).toString();
    const eq = line.indexOf('=');
    if (eq >= 0) {
      out.push([line.slice(0, eq), line.slice(eq + 1)]);
      i = nl + 1;
    } else {
      const len = Number(buf.readBigUInt64LE(nl + 1));
      out.push([line, buf.subarray(nl + 9, nl + 9 + len).toString()]);
      i = nl + 9 + len + 1;
    }
  }
  return out;
}

describe('journal events', () => {
  test('the catalog has exactly the MESSAGE_IDs the code sends, each with a Subject and a text; ids are distinct', () => {
    const c = catalog();
    expect([...c.keys()].sort()).toEqual(Object.values(EVENT_IDS).sort());
    expect(new Set(Object.values(EVENT_IDS)).size).toBe(Object.keys(EVENT_IDS).length);
    for (const [id, text] of c) {
      expect({ id, subject: /^Subject: baton: .+$/m.test(text), body: text.split('\n\n')[1]?.trim().length > 20 }).toEqual({ id, subject: true, body: true });
    }
  });

  test('the datagram: FIELD=value lines; a value with a newline in the length-prefixed form', () => {
    const fields: Array<[string, string]> = [['MESSAGE', 'reload done'], ['BATON_GENERATION', '2'], ['MESSAGE2', 'two\nlines']];
    const buf = journalDatagram(fields);
    expect(buf.subarray(0, 'MESSAGE=reload done\n'.length).toString()).toBe('MESSAGE=reload done\n');
    expect(parse(buf)).toEqual(fields);
    expect(eventFields({ kind: 'worker-crashed', generation: 3, slot: 1, pid: 42 })).toEqual([
      ['MESSAGE_ID', EVENT_IDS['worker-crashed']],
      ['BATON_EVENT', 'worker-crashed'],
      ['BATON_GENERATION', '3'],
      ['BATON_SLOT', '1'],
      ['BATON_WORKER_PID', '42'],
    ]);
  });

  test("the journal sink sends an event as one datagram to journald's socket; with no socket there, as a plain line", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-journal-'));
    const got: Buffer[] = [];
    const receiver = native.notifyBind(path.join(dir, 'socket'), (m) => got.push(m.data));
    const lines: string[] = [];
    const stderr = { write: (l: string) => (lines.push(l), null), close: () => undefined } as never;
    try {
      const sink = new JournalSink(stderr, new Drops(() => undefined), 'baton', path.join(dir, 'stdout'), path.join(dir, 'socket'));
      sink.event('<6>reload done\n', 6, 'reload done', eventFields({ kind: 'reload-done', generation: 2 }));
      await waitFor('the datagram', () => got.length > 0);
      expect(got.map((b) => parse(b))).toEqual([
        [['MESSAGE', 'reload done'], ['PRIORITY', '6'], ['SYSLOG_IDENTIFIER', 'baton'], ['MESSAGE_ID', EVENT_IDS['reload-done']], ['BATON_EVENT', 'reload-done'], ['BATON_GENERATION', '2']],
      ]);
      expect(lines).toEqual([]);
      const away = new JournalSink(stderr, new Drops(() => undefined), 'baton', path.join(dir, 'stdout'), path.join(dir, 'nobody'));
      away.event('<6>reload done\n', 6, 'reload done', eventFields({ kind: 'reload-done', generation: 2 }));
      expect(lines).toEqual(['<6>reload done\n']);
    } finally {
      receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
