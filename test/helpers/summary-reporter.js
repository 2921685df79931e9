'use strict';
// Prints plain closing lines that any CI can read: each test skipped here (a root-only one as
// another user, a missing tool or kernel feature), then "jest: N passed, N failed, N skipped".
const path = require('node:path');

class SummaryReporter {
  onRunComplete(_contexts, r) {
    const skipped = r.testResults.flatMap((f) =>
      f.testResults.filter((t) => t.status === 'pending').map((t) => `jest: skipped: ${path.relative(process.cwd(), f.testFilePath)} › ${[...t.ancestorTitles, t.title].join(' › ')}`),
    );
    process.stdout.write(`\n${skipped.map((l) => `${l}\n`).join('')}jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped\n`);
  }
}
module.exports = SummaryReporter;
