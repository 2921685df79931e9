// The Node adapter, preloaded into a Node worker (NODE_OPTIONS=--require, workers.adapt): an
// app that was written for a port, `app.listen(process.env.PORT || 3000)`, with no signal
// handling, runs unchanged on baton's sockets and loses no request when it is replaced.
//
// - listen(): a server's listen(port | path | options) takes an inherited socket instead of
//   binding: the one with that port (or path), else the next one not taken yet, in
//   LISTEN_FDS order; with a host, only a socket that host fits (a server meant for localhost
//   never lands on a socket bound to every address; see hostFits). Listens beyond the
//   inherited sockets, on port 0, or on an fd or handle of the app's own bind as asked. PORT is
//   set to the first inherited TCP socket's port when the environment has none, so
//   `process.env.PORT || 3000` names it.
// - READY=1 once the first such server listens (the adapted app needs `ready: "notify"`).
// - SIGTERM, SIGQUIT (and SIGINT; twice exits at once): baton/worker's graceful stop for
//   every adopted server (see serve/drain.ts), then exit 0; skipped for a signal the app
//   listens to itself.
//
// Only the process that was given the sockets takes them (LISTEN_PID is its pid), at once,
// before any of the app's code runs: close-on-exec, LISTEN_PID its own, BATON_ADAPT_OWNER and
// the adapter's --require out of its environment, so that nothing it starts (a helper, a
// metrics server) inherits them or the right to take them. A launcher (npm start) instead
// passes them on and names itself in BATON_ADAPT_OWNER: the first Node process below it that
// is not a launcher takes them. Never in a cluster worker (Node's cluster primary listens).
// Loaded by every Node process the worker's environment reaches: only one whose environment
// hands sockets over loads the rest.
if (process.env.LISTEN_FDS !== undefined && process.env.NODE_UNIQUE_ID === undefined) {
  (require('./adapter') as typeof import('./adapter')).adapt();
}
