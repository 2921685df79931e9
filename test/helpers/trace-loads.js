'use strict';
// Preloaded with NODE_OPTIONS=--require: appends "pid time file" to $TRACE_LOADS_FILE for
// every module a process reads from disk (cache misses only), so a test can tell whether
// a running master loads code after start-up.
const Module = require('node:module');
const fs = require('node:fs');
const builtins = new Set(Module.builtinModules);
const out = process.env.TRACE_LOADS_FILE;
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (out && !request.startsWith('node:') && !builtins.has(request)) {
    let file;
    try {
      file = Module._resolveFilename(request, parent, isMain);
    } catch {
      file = undefined;
    }
    if (file && !Module._cache[file]) fs.appendFileSync(out, `${process.pid} ${Date.now()} ${file}\n`);
  }
  return load.apply(this, arguments);
};
