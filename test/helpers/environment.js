'use strict';
// jest's node environment plus the safety net: after a test file (its own afterAll
// clean-ups included), nothing it started may still run. Leftovers get a grace to finish
// exiting, then are named, SIGKILLed and fail the file that left them.
const { TestEnvironment } = require('jest-environment-node');
const { killLeftovers } = require('./leftovers');

class NoLeftoversEnvironment extends TestEnvironment {
  async teardown() {
    await super.teardown();
    const left = await killLeftovers(10000);
    if (left.length) throw new Error(`this test file left processes behind (now killed):\n  ${left.join('\n  ')}`);
  }
}

module.exports = NoLeftoversEnvironment;
