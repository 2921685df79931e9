/*
 * baton_signal_guard.node (node-gyp's extension; it is a plain shared object): preloaded (LD_PRELOAD) into the processes baton starts (a successor
 * master, the workers), so that the master's signals, which `systemctl kill` sends to every
 * process of the unit, cannot kill one of them while it starts (contract/signal-guard.ts).
 *
 * $BATON_SIGNAL_GUARD lists the signal numbers, comma-separated. A constructor runs before the
 * program's main(). Node resets an inherited SIG_IGN to SIG_DFL at start-up (before any of its
 * JavaScript runs) but keeps a handler that is already installed, on purpose, for preloaded
 * libraries: so for Node the signals get a handler that does nothing, replaced later by the
 * program's own (process.on) if it has one. Any other program gets SIG_IGN, which it keeps
 * unless it sets its own, and which, unlike a handler, never interrupts a system call (EINTR).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void do_nothing(int sig) { (void)sig; }

/*
 * Node by what it is, not by its name (a single-executable app, pkg, a renamed copy): a program
 * that exports Node's addon entry point, itself or through a library it was linked with
 * (Debian's /usr/bin/node is a small binary over libnode.so). Preload constructors run once
 * every DT_NEEDED library is loaded and relocated, so the global scope already holds it.
 */
static int is_node(void) {
  return dlsym(RTLD_DEFAULT, "napi_module_register") != NULL;
}

__attribute__((constructor)) static void baton_signal_guard(void) {
  const char *list = getenv("BATON_SIGNAL_GUARD");
  if (!list || !*list) return;
  int saved = errno;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  if (is_node()) {
    sa.sa_handler = do_nothing;
    sa.sa_flags = SA_RESTART;
  } else {
    sa.sa_handler = SIG_IGN;
  }
  for (const char *p = list;;) {
    char *end;
    long sig = strtol(p, &end, 10);
    if (end == p) break;
    if (sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP) sigaction((int)sig, &sa, NULL);
    if (*end != ',') break;
    p = end + 1;
  }
  errno = saved;
}
