#!/usr/bin/env python3
"""subreaper.py [--kill-leftovers] CMD...: runs CMD as a child subreaper (prctl
PR_SET_CHILD_SUBREAPER), the way systemd is PID 1 for a service: a successor master that
double-forks is re-parented here, and every descendant is reaped here.

Without --kill-leftovers it exits once no descendant is left, so its exit proves that
nothing was orphaned. With it (make test), it exits once CMD has exited: whatever is still
running then was left behind by CMD; it is named on stderr, killed, and the exit status is
1 even if CMD succeeded, so a leftover fails the run instead of hanging it. CMD finds this
process's pid in BATON_TEST_REAPER."""
import ctypes, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
args = sys.argv[1:]
kill_leftovers = bool(args) and args[0] == "--kill-leftovers"
if kill_leftovers:
    args = args[1:]
os.environ["BATON_TEST_REAPER"] = str(os.getpid())
pid = os.fork()
if pid == 0:
    os.execvp(args[0], args)


def descendants():
    """(pid, pgid, cmdline) of every process below this one."""
    parent, info = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if rest[0] == "Z":
            continue
        parent[int(d)] = int(rest[1])
        info[int(d)] = (int(rest[2]), cmd)
    out, todo = [], [os.getpid()]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                out.append((c, info[c][0], info[c][1]))
                todo.append(c)
    return out


def reap():
    global status
    while True:
        try:
            p, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if p == 0:
            return True
        if p == pid:
            status = os.waitstatus_to_exitcode(st)


status = None
if not kill_leftovers:
    while True:
        try:
            p, st = os.wait()
        except ChildProcessError:
            break
        if p == pid:
            status = os.waitstatus_to_exitcode(st)
    sys.exit(status if status >= 0 else 128 - status)

while status is None:
    p, st = os.wait()
    if p == pid:
        status = os.waitstatus_to_exitcode(st)
left = descendants()
if left:
    sys.stderr.write("subreaper: the run left these processes behind (killed now):\n")
    for p, pg, cmd in left:
        sys.stderr.write(f"  pid {p} (process group {pg}): {cmd[:200]}\n")
    for p, pg, _ in left:
        # never the group this process shares with whatever started it
        targets = ((p, os.kill),) if pg == os.getpgrp() else ((p, os.kill), (pg, os.killpg))
        for target, how in targets:
            try:
                how(target, signal.SIGKILL)
            except OSError:
                pass
    deadline = time.time() + 5
    while reap() and time.time() < deadline:
        time.sleep(0.05)
    status = status or 1
sys.exit(status if status >= 0 else 128 - status)
