#!/usr/bin/env python3
"""subreaper.py CMD...: runs CMD as a child subreaper (prctl PR_SET_CHILD_SUBREAPER), the
way systemd is PID 1 for a service: a successor master that double-forks is re-parented
here, and every descendant is reaped here. Exits once no descendant is left, so its exit
proves that nothing was orphaned."""
import ctypes, os, sys

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
status = 0
while True:
    try:
        p, st = os.wait()
    except ChildProcessError:
        break
    if p == pid:
        status = os.waitstatus_to_exitcode(st)
sys.exit(status if status >= 0 else 128 - status)
