'use strict';
// After the whole run: the last chance to catch a leftover (one started by a global
// hook, say) before it holds jest's pipes open and the run never ends.
const { killLeftovers } = require('./leftovers');

module.exports = async () => {
  const left = await killLeftovers(5000);
  if (left.length) throw new Error(`the test run left processes behind (now killed):\n  ${left.join('\n  ')}`);
};
