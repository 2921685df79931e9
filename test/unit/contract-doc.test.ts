// docs/contract.md is the contract: its phase table must say what src/master/transitions.ts does.
import fs from 'node:fs';
import path from 'node:path';
import { decide, PHASES, type EventKind, type Handler, type Phase } from '../../src/master/transitions';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'contract.md'), 'utf8');

/** The rows of the table headed "| phase | HUP / reload | ...": phase -> its cells. */
function docTable(): Map<string, string[]> {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| phase | HUP / reload |'));
  expect(start).toBeGreaterThan(0);
  const rows = new Map<string, string[]>();
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    const [phase, ...cells] = l.split('|').slice(1, -1).map((c) => c.trim());
    rows.set(phase, cells);
  }
  return rows;
}

describe('docs/contract.md, "Signals and phases"', () => {
  const rows = docTable();

  test('has a row for every phase, and no other', () => {
    expect([...rows.keys()].sort()).toEqual([...PHASES].sort());
  });

  // columns: the events each stands for
  const columns: EventKind[][] = [['reload'], ['upgrade'], ['winch', 'resize'], ['stop'], ['recycle-due']];
  // how the table words what each handler of a request does (the start of its cell)
  const says: Partial<Record<Handler, RegExp>> = {
    reload: /^reload\b/,
    upgrade: /^upgrade$/,
    winch: /^act\b/,
    resize: /^act\b/,
    stop: /^stop\b/,
    cancelReloadAndStop: /^stop; .*fails/,
    cancelUpgradeAndStop: /^stop; .*rolled back/,
    handOverAndStop: /^hand over\b/,
    stopAgain: /^nothing more\b/,
    recycle: /^recycle\b/,
    recycleLater: /^waits\b/,
    recycleWhileSoaking: /^waits\b.*reverts/,
    recycleUnconfirmed: /^waits\b.*predecessor/,
  };
  test.each(PHASES)('%s: each refusal is the table\'s own text; each accepted request (and a worker due for recycling) says what its handler does', (phase: Phase) => {
    const cells = rows.get(phase)!;
    expect(cells).toHaveLength(columns.length);
    columns.forEach((kinds, i) => {
      const cell = cells[i] === 'same' ? cells[i - 1] : cells[i];
      for (const kind of kinds) {
        const row = decide(phase, kind);
        if (typeof row === 'string') expect(cell).toBe(row);
        else expect({ kind, cell }).toEqual({ kind, cell: expect.stringMatching(says[row!.do]!) });
      }
    });
    // stop is never refused
    expect(typeof decide(phase, 'stop')).toBe('object');
  });
});
