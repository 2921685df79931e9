// The Node adapter, preloaded into a Node worker (NODE_OPTIONS=--require, workers.adapt): an
// app that was written for a port, `app.listen(process.env.PORT || 3000)`, with no signal
// handling, runs unchanged on baton's sockets and loses no request when it is replaced.
//
// - listen(): a server's listen(port | path | options) takes an inherited socket instead of
//   binding: the one with that port (or path), else the next one not taken yet, in
//   LISTEN_FDS order. Listens beyond the inherited sockets, on port 0, or on an fd or handle
//   of the app's own bind as asked. PORT is set to the first inherited TCP socket's port when
//   the environment has none, so `process.env.PORT || 3000` names it.
// - READY=1 once the first such server listens (the adapted app needs `ready: "notify"`).
// - SIGTERM, SIGQUIT (and SIGINT; twice exits at once): baton/worker's graceful stop for
//   every adopted server (see serve/drain.ts), then exit 0; skipped for a signal the app
//   listens to itself.
//
// It is inert in a process that was given no sockets: it only acts where LISTEN_PID is the
// process, or where an ancestor that was (npm, when the worker is `npm start`) named itself
// in BATON_ADAPT_OWNER, and never in a cluster worker (Node's cluster primary listens).
// Loaded by every Node process of an adapted worker (npm too, and whatever the app starts):
// only a process that may hold sockets loads the rest.
if (process.env.LISTEN_FDS !== undefined && process.env.NODE_UNIQUE_ID === undefined) {
  (require('./adapter') as typeof import('./adapter')).adapt();
}
