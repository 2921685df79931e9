'use strict';
// jest's node environment plus the safety net: after a test file (its own afterAll
// clean-ups included), nothing it started may still run. Leftovers get a grace to finish
// exiting, then are named, SIGKILLed and fail the file that left them. Then the folders the
// file made with helpers/proc's tmpdir() are removed, whether it passed or not.
const fs = require('node:fs');
const { TestEnvironment } = require('jest-environment-node');
const { killLeftovers } = require('./leftovers');

class NoLeftoversEnvironment extends TestEnvironment {
  async setup() {
    await super.setup();
    this.tmpdirs = [];
    this.global.batonTmpdirs = this.tmpdirs;
  }

  async teardown() {
    await super.teardown();
    const left = await killLeftovers(10000);
    for (const dir of this.tmpdirs) fs.rmSync(dir, { recursive: true, force: true });
    if (left.length) throw new Error(`this test file left processes behind (now killed):\n  ${left.join('\n  ')}`);
  }
}

module.exports = NoLeftoversEnvironment;
