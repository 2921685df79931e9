#!/bin/bash
# Runs inside a booted container (container.sh sh SUITE /e2e/checks.sh): installs the
# baton package, drives it with systemctl and checks what an operator would. One
# PASS/FAIL line per check, a summary line, exit status = number of failures.
set -u
PORT=8080
U=baton@demo.service
S=baton@demo.socket
CFG=/etc/baton/demo.json
passed=0
failed=0
ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
prop() { systemctl show -p "$1" --value "$U"; }
get() { curl -s -m 10 "http://127.0.0.1:$PORT/"; }
until_true() { # until_true SECONDS CMD...: polls CMD every 0.1 s
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
mainpid_is_not() { local m; m=$(prop MainPID); [ "$m" != "$1" ] && [ "$m" != 0 ]; }
# a function, so that until_true asks again each time (an argument "$(prop ...)" is read once)
is_active() { [ "$(prop ActiveState)" = active ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# load from a second process: 4 keep-alive and 4 new-connection clients; it must have 100
# answers before the action starts
MIN_ANSWERED=100
load_start() {
  rm -f /tmp/load.json
  LOAD_UNTIL_SIGNAL=1 node /e2e/load-client.js "$PORT" 4 4 >/tmp/load.json 2>/tmp/load.progress </dev/null &
  LOAD=$!
  until_true 10 grep -q 'ok=[1-9][0-9][0-9]' /tmp/load.progress || bad "load on port $PORT: not $MIN_ANSWERED answers within 10 s: $(tail -c 200 /tmp/load.progress | tr '\n' '|')"
}
# load_stop: sets LOADED="OK FAILED ERRORS". Never in $(...): only the shell that started the
# load can wait for it, and a subshell's `wait` returns at once, before the stats are written.
load_stop() {
  sleep 1
  kill -TERM "$LOAD"; wait "$LOAD"
  LOADED=$(node -e 'const s=require("/tmp/load.json"); console.log(s.ok, s.failed, JSON.stringify(s.errors))' 2>/dev/null) ||
    LOADED='0 0 {"load-client":"wrote no stats"}'
}
zero_failed() { # zero_failed WHAT "OK FAILED ERRORS": 0 failed, and at least MIN_ANSWERED answered
  set -- "$1" $2
  if [ "$3" = 0 ] && [ "$2" -ge "$MIN_ANSWERED" ]; then ok "$1: $2 requests, 0 failed"; else bad "$1: $2 answered (at least $MIN_ANSWERED expected), $3 failed $4"; fi
}
# since CURSOR [ARGS]: the journal after CURSOR (-o cat); fails when there is no cursor or
# journalctl fails, so that a check for what is NOT in the journal cannot pass on nothing
since() {
  [ -n "$1" ] || return 2
  local c=$1; shift
  journalctl -q --no-pager -o cat --after-cursor="$c" "$@"
}
# journal_has CURSOR REGEX [ARGS]: whether the journal after CURSOR has REGEX (kept in /tmp/journal.txt)
journal_has() { since "$1" "${@:3}" >/tmp/journal.txt && grep -q "$2" /tmp/journal.txt; }
refused() { node -e 'console.log(JSON.parse(process.argv[1]).ECONNREFUSED || 0)' "$1"; }
# a request that takes 3 s (examples/hello's ?delay=), in flight while something happens
slow_start() {
  # the master's workers now: one of them must answer it, however the master fares meanwhile
  SLOW_BY=" $(pgrep -d ' ' -P "$(prop MainPID)") "
  curl -s -m 60 -o /tmp/slow.out -w '%{http_code}' "http://127.0.0.1:$PORT/?delay=3000" >/tmp/slow.code 2>/dev/null &
  SLOW=$!
  sleep 0.5
}
slow_check() { # slow_check WHAT
  local by
  wait "$SLOW"
  by=$(sed -n 's/^hello from worker [0-9]* (pid \([0-9]*\),.*/\1/p' /tmp/slow.out)
  if [ "$(cat /tmp/slow.code)" = 200 ] && [ -n "$by" ] && [[ $SLOW_BY == *" $by "* ]]; then ok "$1: the 3 s request in flight was answered by the worker that took it (pid $by)"
  else bad "$1: the 3 s request in flight: HTTP $(cat /tmp/slow.code) '$(cat /tmp/slow.out)' (the workers then:$SLOW_BY)"; fi
}

suite=${1:-?}
sdv=$(systemctl --version | awk 'NR==1{print $2}')
echo "=== $suite: systemd $sdv, node $(node --version)"

# ---- install ----
# as docs/deploying.md says: apt resolves the dependency (nodejs) from Debian's own packages
if (cd /e2e && apt-get install -y ./baton-N.deb) >/tmp/dpkg.log 2>&1; then ok "dpkg -i baton $(dpkg-query -W -f '${Version}' baton)"; else bad "dpkg -i: $(tail -3 /tmp/dpkg.log)"; fi
cat >"$CFG" <<JSON
{
  "listeners": [{ "name": "http" }],
  "workers": {
    "command": ["/usr/bin/node", "/usr/share/baton/examples/hello/server.js"],
    "count": 2,
    "stopTimeoutMs": 10000
  }
}
JSON
mkdir -p /etc/systemd/system/$S.d
printf '[Socket]\nListenStream=127.0.0.1:%s\nFileDescriptorName=http\n' "$PORT" >/etc/systemd/system/$S.d/listen.conf
systemctl daemon-reload
out=$(systemd-analyze verify "$U" "$S" 2>&1)
[ -z "$out" ] && ok "systemd-analyze verify: clean" || bad "systemd-analyze verify: $out"

# ---- socket activation ----
# as the docs say: enabled (at boot) and started now
systemctl enable --now "$S" 2>/dev/null
[ "$(systemctl is-enabled "$S")" = enabled ] && ok "systemctl enable --now $S: enabled" || bad "$S is $(systemctl is-enabled "$S")"
[ "$(prop ActiveState)" = inactive ] && ok "socket started, service not yet" || bad "service already $(prop ActiveState)"
body=$(get)
[[ $body == "hello from worker"* ]] && ok "first connection activates baton@demo: $body" || bad "activation: '$body'"
until_true 10 is_active || bad "not active after activation: $(prop ActiveState)/$(prop SubState)"
m=$(prop MainPID)
grep -q /usr/lib/baton/bin/baton "/proc/$m/cmdline" 2>/dev/null && ok "MainPID $m is baton" || bad "MainPID $m is $(tr '\0' ' ' <"/proc/$m/cmdline")"

st=$(systemctl status "$U" --no-pager 2>&1) && grep -q 'Status: "generation 1: 2/2 workers ready"' <<<"$st" &&
  ok "systemctl status shows baton's STATUS=" || bad "systemctl status: $(head -12 <<<"$st" | tr '\n' '|')"

# ---- reload ----
load_start
if systemctl reload "$U"; then ok "systemctl reload"; else bad "systemctl reload failed"; fi
gen=$(baton status -c "$CFG" --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).generation)')
[ "$gen" = 2 ] && ok "generation 2 serves after reload" || bad "generation after reload: $gen"
load_stop; zero_failed "systemctl reload under load" "$LOADED"
cp "$CFG" /tmp/good.json
sed -i 's/"count": 2/"count": 0/' "$CFG"
load_start
if systemctl reload "$U" 2>/tmp/reload.err; then bad "a reload with a broken config succeeded"; else ok "systemctl reload fails on a broken config"; fi
journalctl -u "$U" -n 20 --no-pager | grep -q '/workers/count: must be >= 1' && ok "journal names the key" || bad "journal lacks the reason"
load_stop; zero_failed "serving through the refused reload" "$LOADED"
[ "$(prop ActiveState)" = active ] && ok "still active" || bad "state $(prop ActiveState)"
cp /tmp/good.json "$CFG"

# ---- journal events (issue 26): baton's own events carry MESSAGE_ID and BATON_* fields, under
# the unit (journald attributes the datagrams by cgroup); the catalog explains them (-x) ----
# ev ID FIELD=VALUE...: whether the unit's last event ID has every FIELD=VALUE (-o json)
ev() {
  journalctl -u "$U" -q --no-pager -o json MESSAGE_ID="$1" | tail -1 >/tmp/event.json
  shift
  node -e 'const e = JSON.parse(require("fs").readFileSync("/tmp/event.json", "utf8") || "{}");
    const bad = process.argv.slice(1).filter((kv) => { const [k, v] = kv.split("="); return v === "*" ? e[k] === undefined : e[k] !== v; });
    if (bad.length) { console.error(`${bad.join(" ")} not in ${JSON.stringify(e)}`); process.exit(1); }' "$@"
}
ev 2ee7b0d1ad9542daafa7e874318a4b97 BATON_EVENT=reload-done BATON_GENERATION=2 PRIORITY=6 SYSLOG_IDENTIFIER=baton _SYSTEMD_UNIT="$U" &&
  ok "journal: reload-done with MESSAGE_ID, BATON_GENERATION=2, under $U" || bad "journal: reload-done: $(cat /tmp/event.json)"
ev 722f1fcf7b4441129639018972268177 BATON_EVENT=reload-started && ok "journal: reload-started" || bad "journal: reload-started: $(cat /tmp/event.json)"
ev 166770d814034b63be63401e8358634d BATON_EVENT=reload-failed PRIORITY=3 &&
  grep -q '/workers/count: must be >= 1' /tmp/event.json && ok "journal: reload-failed, priority 3, with the reason" || bad "journal: reload-failed: $(cat /tmp/event.json)"
ev 7ca3342e1b8b48fc8fa57d5ba80c73c5 BATON_EVENT=worker-exited BATON_GENERATION=1 BATON_SLOT='*' BATON_WORKER_PID='*' &&
  ok "journal: worker-exited with generation, slot and pid" || bad "journal: worker-exited: $(cat /tmp/event.json)"
# what finds every event of a kind, as an operator would ask
n=$(journalctl -u "$U" -q --no-pager MESSAGE_ID=2ee7b0d1ad9542daafa7e874318a4b97 | wc -l)
[ "$n" -ge 1 ] && ok "journalctl -u $U MESSAGE_ID=… lists $n reload(s) done" || bad "journalctl MESSAGE_ID=: $n"
journalctl --update-catalog 2>/dev/null
journalctl --list-catalog 2ee7b0d1ad9542daafa7e874318a4b97 2>/dev/null | grep -q 'baton: a reload is done' &&
  ok "the catalog (/usr/lib/systemd/catalog/baton.catalog) is known to journalctl" || bad "catalog: $(journalctl --list-catalog 2>&1 | grep -i baton | head -3)"
journalctl -u "$U" -x -q --no-pager MESSAGE_ID=2ee7b0d1ad9542daafa7e874318a4b97 | grep -q 'Generation 2 serves; the one it replaced drains' &&
  ok "journalctl -x explains reload-done, the generation filled in" || bad "journalctl -x: $(journalctl -u "$U" -x -q --no-pager MESSAGE_ID=2ee7b0d1ad9542daafa7e874318a4b97 | head -8 | tr '\n' '|')"

# ---- workers.maxMemory under real systemd (issue 24): an unmodified Node app that keeps 200 KB
# per request, in an instance of its own (DynamicUser, ProtectProc=invisible: the master reads
# its own workers' smaps_rollup), under load: recycled by memory, replacement first, 0 failed ----
LU=baton@leak.service
mkdir -p /opt/leak && cp /e2e/leaking-app.js /opt/leak/app.js
cat >/etc/baton/leak.json <<JSON
{
  "listeners": [{ "name": "http", "tcp": "127.0.0.1:8096" }],
  "workers": {
    "command": ["/usr/bin/node", "/opt/leak/app.js"],
    "count": 2,
    "maxMemory": "150M",
    "maxMemorySamples": 2,
    "sampleIntervalMs": 250,
    "stopTimeoutMs": 10000
  }
}
JSON
memory_recycles() { baton status -c /etc/baton/leak.json --json 2>/dev/null | node -e 'const s=JSON.parse(require("fs").readFileSync(0)); const g=s.generations.find((x) => x.id === s.generation); console.log(g && g.recycles ? g.recycles.memory : 0)'; }
three_recycles() { [ "$(memory_recycles)" -ge 3 ]; }
lcursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
if systemctl start "$LU" && until_true 20 sh -c 'curl -s -m 2 http://127.0.0.1:8096/ | grep -q leaking'; then
  ok "$LU serves the leaking app"
  PORT=8096 load_start
  until_true 120 three_recycles && ok "maxMemory: $(memory_recycles) memory recycles under load" || bad "maxMemory: $(memory_recycles) memory recycles in 120 s (3 expected)"
  load_stop; zero_failed "memory recycles under load" "$LOADED"
  # each replacement was ready before its old worker was told to drain: the commit line says so
  n=$(since "$lcursor" -u "$LU" | grep -c 'recycled (memory: .*): its replacement (pid [0-9]*) is ready after [0-9]* ms and holds slot')
  [ "$n" -ge 3 ] && ok "journal: $n recycles committed once the replacement was ready" || bad "journal: $n recycle commits: $(since "$lcursor" -u "$LU" | grep -i recycl | head -5 | tr '\n' '|')"
else
  bad "$LU did not start: $(systemctl status "$LU" --no-pager 2>&1 | tail -5 | tr '\n' '|')"
fi
systemctl stop "$LU"
[ "$(systemctl show -p ActiveState --value "$LU")" = inactive ] && ok "$LU stopped" || bad "$LU: $(systemctl show -p ActiveState --value "$LU")"

# ---- reload.soakMs under real systemd (issue 25): a release that is ready and then exits in its
# first request is reverted by `systemctl reload`, which fails; the unit stays active on the old
# release, which served throughout ----
SU=baton@soak.service
mkdir -p /opt/soak && cp /e2e/first-use-crash-app.js /opt/soak/app.js
soak_config() { # soak_config BROKEN
  cat >/etc/baton/soak.json <<JSON
{
  "listeners": [{ "name": "http", "tcp": "127.0.0.1:8097" }],
  "reload": { "soakMs": 3000 },
  "workers": { "command": ["/usr/bin/node", "/opt/soak/app.js"], "count": 2, "env": { "BROKEN": "$1" }, "stopTimeoutMs": 10000 }
}
JSON
}
soak_config 0
if systemctl start "$SU" && until_true 20 sh -c 'curl -s -m 2 http://127.0.0.1:8097/ | grep -q "generation 1"'; then
  ok "$SU serves generation 1"
  PORT=8097 load_start
  soak_config 1
  scursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
  if timeout 60 systemctl reload "$SU"; then bad "systemctl reload of a release that crashes on first use succeeded"; else ok "systemctl reload failed: the release was reverted"; fi
  [ "$(systemctl show -p ActiveState --value "$SU")" = active ] && ok "$SU still active" || bad "$SU: $(systemctl show -p ActiveState --value "$SU")"
  load_stop
  set -- $LOADED
  # what failed is what a crashing worker held: at most a request per client (8) on each of 2
  [ "$1" -ge "$MIN_ANSWERED" ] && [ "$2" -le 16 ] && ok "soak revert under load: $1 answered, $2 failed (held by the crashing workers) $3" || bad "soak revert under load: $1 answered, $2 failed $3"
  [ "$(curl -s -m 2 http://127.0.0.1:8097/)" = "generation 1" ] && ok "generation 1 serves after the revert" || bad "after the revert: $(curl -s -m 2 http://127.0.0.1:8097/)"
  baton status -c /etc/baton/soak.json | grep -q 'last reload .*: reverted: worker [0-9] (pid [0-9]*) of generation 2 exited with status 1, [0-9]* ms into the 3000 ms soak' &&
    ok "baton status: the last reload was reverted, and why" || bad "baton status: $(baton status -c /etc/baton/soak.json | grep 'last reload')"
  since "$scursor" -u "$SU" | grep -q 'reload reverted: .*generation 1 kept serving throughout' && ok "journal: reload reverted" || bad "journal: $(since "$scursor" -u "$SU" | tail -5 | tr '\n' '|')"
  # it stays up, the broken release still on disk, for the package upgrade below
  SOAK_UP=yes
else
  bad "$SU did not start: $(systemctl status "$SU" --no-pager 2>&1 | tail -5 | tr '\n' '|')"
  systemctl stop "$SU"
fi

# ---- binary upgrade with systemctl kill (all processes) ----
load_start
m1=$(prop MainPID)
systemctl kill -s USR2 "$U"
if until_true 30 mainpid_is_not "$m1"; then ok "USR2: MainPID $m1 -> $(prop MainPID)"; else bad "USR2: MainPID still $m1"; fi
until_true 30 gone "$m1" && ok "old master gone" || bad "old master $m1 still there"
load_stop; zero_failed "systemctl kill -s USR2 under load" "$LOADED"
[ "$(prop ActiveState)" = active ] && ok "active after the upgrade" || bad "state $(prop ActiveState)"
m2=$(prop MainPID)
[ "$(ps -o ppid= -p "$m2" | tr -d ' ')" = 1 ] && ok "new master is PID 1's child" || bad "new master's parent: $(ps -o ppid= -p "$m2")"
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
systemctl stop "$U"
[ "$(prop Result)" = success ] && ok "stop after the hand-over: Result=success" || bad "stop: Result=$(prop Result)"
if ! until_true 10 journal_has "$cursor" '\bstopped$'; then bad "the journal since the stop lacks the master's 'stopped' (cursor '$cursor')"
elif grep -E 'SIGKILL|not our child|Killing process' /tmp/journal.txt; then bad "stop was not graceful"; else ok "no SIGKILL in the journal"; fi

# ---- journald stopped and started (issue 9 item 1): the journal stream systemd gave the master
# as stderr is closed (a restart would hand it over through journald's fd store; a stop does
# not). The master's next line fails with EPIPE: it connects a stream of its own and keeps
# serving, reloading and stopping ----
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# stopped above with its socket still active: the next connection starts it again
[ "$(systemctl show -p ActiveState --value "$S")" = active ] && [[ $(get) == "hello from worker"* ]] &&
  ok "stop with $S active: the next connection started it again" || bad "after stop with $S active: $(prop ActiveState)"
until_true 10 is_active || bad "not active again after the stop: $(prop ActiveState)/$(prop SubState)"
m1=$(prop MainPID)
systemctl stop systemd-journald 2>/dev/null
systemctl start systemd-journald
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
t0=$(date +%s%N)
if timeout 60 systemctl reload "$U"; then ok "reload after journald stop+start: $((($(date +%s%N) - t0) / 1000000)) ms"; else bad "reload after journald stop+start failed or hung: $(prop ActiveState)/$(prop SubState)"; fi
[ "$(prop SubState)" = running ] && [ "$(prop MainPID)" = "$m1" ] && ok "running, MainPID still $m1" || bad "after the reload: $(prop SubState), MainPID $m1 -> $(prop MainPID)"
[[ $(get) == "hello from worker"* ]] && ok "serving after journald stop+start" || bad "not serving after journald stop+start"
c0=$(cpu_ticks "$m1"); sleep 1; c1=$(cpu_ticks "$m1")
[ $((c1 - c0)) -lt 50 ] && ok "master idle: $((c1 - c0)) CPU ticks in 1 s" || bad "master busy: $((c1 - c0)) CPU ticks in 1 s"
until_true 10 sh -c "journalctl -q --no-pager -o cat -u $U --after-cursor='$cursor' | grep -q 'generation 2 ready'" &&
  ok "the master's lines reach the journal again (journalctl -u $U)" || bad "journal after the restart: $(journalctl -q --no-pager --after-cursor="$cursor" | tail -5 | tr '\n' '|')"
echo "INFO: baton status: $(baton status -c "$CFG" | grep '^  log ' || echo 'no line dropped')"
t0=$(date +%s%N)
timeout 60 systemctl stop "$U"
[ "$(prop Result)" = success ] && ok "stop after journald stop+start: $((($(date +%s%N) - t0) / 1000000)) ms, Result=success" || bad "stop after journald stop+start: Result=$(prop Result)"

# ---- kill -9 of the master: systemd restarts it, the socket unit keeps the socket; with
# KillMode=control-group the workers get SIGTERM and drain first: nothing refused, nothing cut ----
crash_check() { # crash_check WHAT: kill -9 of the master under load, a 3 s request in flight
  local m1 t0 t1 t2 out answered nfailed errors
  load_start
  slow_start
  m1=$(prop MainPID)
  t0=$(date +%s%N)
  kill -9 "$m1"
  if until_true 30 mainpid_is_not "$m1"; then ok "$1: kill -9: restarted as $(prop MainPID)"; else bad "$1: kill -9: not restarted"; fi
  t1=$(date +%s%N)
  until_true 30 is_active || bad "$1: not active again: $(prop ActiveState)/$(prop SubState)"
  t2=$(date +%s%N)
  slow_check "kill -9 ($1)"
  load_stop; out=$LOADED
  read -r answered nfailed errors <<<"$out"
  echo "INFO: kill -9 ($1), systemd $sdv: new MainPID after $(((t1 - t0) / 1000000)) ms, active after $(((t2 - t0) / 1000000)) ms; answered failed errors = $out, ECONNREFUSED $(refused "$errors")"
  [ "$(refused "$errors")" = 0 ] && ok "kill -9 ($1) under load: 0 connections refused ($answered answered)" || bad "kill -9 ($1) under load: $(refused "$errors") refused: $errors"
  zero_failed "kill -9 of the master ($1) under load" "$out"
}
get >/dev/null
until_true 10 is_active || bad "not active before the crash: $(prop ActiveState)/$(prop SubState)"
crash_check ".socket unit"

# ---- package upgrade = hot upgrade ----
load_start
m1=$(prop MainPID)
# requests to baton@soak meanwhile: its release breaks on first use only
if [ -n "${SOAK_UP:-}" ]; then (while :; do curl -s -m 1 -o /dev/null http://127.0.0.1:8097/; sleep 0.02; done) & SOAK_POKE=$!; fi
if (cd /e2e && apt-get install -y ./baton-N1.deb) >/tmp/dpkg.log 2>&1; then ok "apt-get install ./baton-N1.deb: baton $(dpkg-query -W -f '${Version}' baton)"; else bad "upgrade: $(tail -5 /tmp/dpkg.log)"; fi
grep -q "baton@demo.service hot-upgraded" /tmp/dpkg.log && ok "postinst hot-upgraded the instance" || bad "postinst: $(tr '\n' '|' </tmp/dpkg.log)"
mainpid_is_not "$m1" && ok "MainPID $m1 -> $(prop MainPID)" || bad "MainPID unchanged"
v=$(baton status -c "$CFG" --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).version)')
[ "$v" = "$(dpkg-query -W -f '${Version}' baton)" ] && ok "baton status shows $v" || bad "baton status shows $v"
load_stop; zero_failed "package upgrade under load" "$LOADED"
# the same package upgrade reached baton@soak, whose config on disk still names the release that
# crashes on first use: its successor's workers fail in the soak, the upgrade rolls back, and the
# old master (MainPID unchanged, the old code) serves on
if [ -n "${SOAK_UP:-}" ]; then
  kill "$SOAK_POKE" 2>/dev/null; wait "$SOAK_POKE" 2>/dev/null
  grep -q "ERROR: hot upgrade of $SU to .* failed; the old master (pid $(systemctl show -p MainPID --value "$SU"), .*) keeps serving. Reason: upgrade rolled back: the successor (pid [0-9]*) in its soak: its worker failed: worker [0-9] (pid [0-9]*) of generation [0-9]* exited with status 1, [0-9]* ms into the 3000 ms soak" /tmp/dpkg.log &&
    ok "postinst: the hot upgrade of $SU rolled back in its soak, the old master serves" || bad "postinst for $SU: $(grep "$SU" /tmp/dpkg.log | tr '\n' '|')"
  [ "$(systemctl show -p ActiveState --value "$SU")" = active ] && ok "$SU still active" || bad "$SU: $(systemctl show -p ActiveState --value "$SU")"
  [ "$(curl -s -m 2 http://127.0.0.1:8097/)" = "generation 1" ] && ok "$SU: generation 1 serves after the rollback" || bad "$SU after the rollback: $(curl -s -m 2 http://127.0.0.1:8097/)"
  baton status -c /etc/baton/soak.json --json | node -e 'const u=JSON.parse(require("fs").readFileSync(0)).upgrade.last; process.exit(u && u.ok === false && u.reverted === true ? 0 : 1)' &&
    ok "$SU: baton status --json says the upgrade was reverted" || bad "$SU status: $(baton status -c /etc/baton/soak.json --json | head -c 600)"
  systemctl stop "$SU"
fi

# ---- the rpm's %posttrans (packaging/rpm/baton.spec), the scriptlet as built (run.sh takes it
# from the rpm with rpm -qp --scripts), run as rpm runs it after an upgrade transaction:
# the running instance hot-upgraded (a new MainPID), every request answered throughout ----
if [ -s /e2e/rpm-posttrans.sh ]; then
  load_start
  slow_start
  m1=$(prop MainPID)
  vrun=$(dpkg-query -W -f '${Version}' baton)
  sh /e2e/rpm-posttrans.sh 1 >/tmp/posttrans.log 2>&1
  rc=$?
  echo "INFO: rpm %posttrans said: $(tr '\n' '|' </tmp/posttrans.log)"
  [ "$rc" = 0 ] && grep -q "$U hot-upgraded to $vrun" /tmp/posttrans.log && ok "rpm %posttrans: exit 0, says it hot-upgraded $U" || bad "rpm %posttrans: exit $rc: $(tr '\n' '|' </tmp/posttrans.log)"
  if until_true 30 mainpid_is_not "$m1"; then ok "rpm %posttrans: MainPID $m1 -> $(prop MainPID)"; else bad "rpm %posttrans: MainPID still $m1"; fi
  until_true 30 gone "$m1" && ok "rpm %posttrans: old master gone" || bad "rpm %posttrans: old master $m1 still there"
  [ "$(prop ActiveState)" = active ] && ok "rpm %posttrans: active" || bad "rpm %posttrans: $(prop ActiveState)/$(prop SubState)"
  slow_check "rpm %posttrans"
  load_stop; zero_failed "rpm %posttrans under load" "$LOADED"
elif [ -s /e2e/rpm-posttrans.skip ]; then
  echo "SKIPPED: the rpm's %posttrans: $(cat /e2e/rpm-posttrans.skip)"
else
  bad "the rpm's %posttrans: neither /e2e/rpm-posttrans.sh nor the reason it is missing (run.sh)"
fi

# ---- package upgrade with a config on disk that no longer validates (edited, not reloaded):
# the hot upgrade rolls back, the old master keeps serving, and the failure is loud ----
status_versions() { baton status -c "$CFG" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0)); console.log(s.version, s.installedVersion)'; }
cp "$CFG" /tmp/good.json
sed -i 's/"count": 2/"count": 0/' "$CFG"
vrun=$(dpkg-query -W -f '${Version}' baton)
load_start
m1=$(prop MainPID)
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
dpkg -i /e2e/baton-N2.deb >/tmp/dpkg.log 2>&1
rc=$?
vnew=$(dpkg-query -W -f '${Version}' baton)
echo "INFO: postinst said: $(grep 'baton: ' /tmp/dpkg.log)"
[ "$rc" = 0 ] && [ "$vnew" != "$vrun" ] && ok "dpkg -i baton $vnew with a broken config on disk: installed, exit 0" || bad "dpkg -i N+2: exit $rc, $vnew: $(tail -5 /tmp/dpkg.log)"
[ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" = "$m1" ] && ok "not restarted: active, MainPID still $m1" || bad "after the failed hot upgrade: $(prop ActiveState), MainPID $m1 -> $(prop MainPID)"
load_stop; zero_failed "serving through the failed hot upgrade" "$LOADED"
grep -q "ERROR: hot upgrade of $U to $vnew failed; the old master (pid $m1, baton $vrun) keeps serving.*/workers/count: must be >= 1.*baton upgrade -c $CFG" /tmp/dpkg.log &&
  ok "postinst says what failed, that the old master serves, how to finish" || bad "postinst: $(tr '\n' '|' </tmp/dpkg.log)"
journalctl -q --no-pager -o cat -u "$U" -p err --after-cursor="$cursor" | grep -q "hot upgrade of $U to $vnew failed.*/workers/count: must be >= 1" &&
  ok "journalctl -u $U -p err has it" || bad "journal: $(journalctl -q --no-pager -u "$U" --after-cursor="$cursor" | tail -5 | tr '\n' '|')"
st=$(baton status -c "$CFG" 2>&1)
echo "INFO: baton status said:"; sed -n '1,4p' <<<"$st"
[[ $st == *"baton $vrun, master pid $m1"* && $st == *"installed  baton $vnew, but the master runs $vrun"* && $st == *"last upgrade"*"failed:"*"/workers/count: must be >= 1"* && $st == *"baton upgrade -c $CFG"* ]] &&
  ok "baton status: $vrun runs, $vnew installed, the reason and the hint" || bad "baton status: $(tr '\n' '|' <<<"$st")"
[ "$(status_versions)" = "$vrun $vnew" ] && ok "baton status --json: version $vrun, installedVersion $vnew" || bad "status --json: $(status_versions)"
# fixed: `baton upgrade` completes it
cp /tmp/good.json "$CFG"
load_start
if out=$(baton upgrade -c "$CFG" 2>&1); then ok "baton upgrade after the fix: $out"; else bad "baton upgrade after the fix: $out"; fi
mainpid_is_not "$m1" && ok "MainPID $m1 -> $(prop MainPID)" || bad "MainPID unchanged"
until_true 30 gone "$m1" && ok "old master gone" || bad "old master $m1 still there"
[ "$(status_versions)" = "$vnew $vnew" ] && ok "baton status: $vnew runs" || bad "status --json after baton upgrade: $(status_versions)"
st=$(baton status -c "$CFG" 2>&1)
[[ $st == *"baton $vnew, master pid"* && $st != *installed* ]] && ok "baton status: no version skew left" || bad "baton status: $(tr '\n' '|' <<<"$st")"
load_stop; zero_failed "baton upgrade under load" "$LOADED"

# ---- a master that does not answer (control socket and pidfile gone): restarted, but only
# when the new code accepts the config; reinstalling the same version runs the postinst ----
m1=$(prop MainPID)
rm -f /run/baton/demo/control.sock /run/baton/demo/baton.pid
sed -i 's/"count": 2/"count": 0/' "$CFG"
dpkg -i /e2e/baton-N2.deb >/tmp/dpkg.log 2>&1
grep -q "ERROR: hot upgrade of $U failed and its master does not answer; not restarted.*/workers/count: must be >= 1" /tmp/dpkg.log &&
  ok "not answering, broken config: not restarted, says why" || bad "postinst: $(tr '\n' '|' </tmp/dpkg.log)"
[ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" = "$m1" ] && ok "still active, MainPID $m1" || bad "$(prop ActiveState), MainPID $m1 -> $(prop MainPID)"
cp /tmp/good.json "$CFG"
load_start
dpkg -i /e2e/baton-N2.deb >/tmp/dpkg.log 2>&1
grep -q "does not answer: restarting it" /tmp/dpkg.log && grep -q "$U restarted with $vnew" /tmp/dpkg.log &&
  ok "not answering, good config: restarted" || bad "postinst: $(tr '\n' '|' </tmp/dpkg.log)"
until_true 30 is_active || bad "not active after the restart: $(prop ActiveState)/$(prop SubState)"
mainpid_is_not "$m1" && ok "MainPID $m1 -> $(prop MainPID), $(prop ActiveState)" || bad "MainPID unchanged"
load_stop; read -r answered nfailed errors <<<"$LOADED"
if [[ $errors != *ECONNREFUSED* ]] && [ "$answered" -ge "$MIN_ANSWERED" ]; then ok "no connection refused across the restart ($answered answered, $nfailed cut in flight: $errors)"; else bad "across the restart: $answered answered, errors $errors"; fi

# ---- the FD store: no .socket unit, baton binds 127.0.0.1:8080 itself and hands the socket to
# systemd (FDSTORE=1); a restart and a crash take it back from LISTEN_FDS. systemd >= 254 says
# so in $FDSTORE; 252 needs "fdStore": true ----
switch=""
[ "$sdv" -lt 254 ] && switch='"fdStore": true,'
# as docs/operating.md says: stop both to stop serving, disable the socket to keep it so
systemctl stop "$S" "$U"
curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/"; rc=$?
[ "$rc" = 7 ] && ok "systemctl stop $S $U: port $PORT refused" || bad "after stopping both: curl exit $rc"
systemctl disable --now "$S" 2>/dev/null
[ "$(systemctl is-enabled "$S")" = disabled ] && ok "systemctl disable --now $S: disabled" || bad "$S is $(systemctl is-enabled "$S")"
cat >"$CFG" <<JSON
{
  $switch
  "listeners": [{ "name": "http", "tcp": "127.0.0.1:$PORT" }],
  "workers": {
    "command": ["/usr/bin/node", "/usr/share/baton/examples/hello/server.js"],
    "count": 2,
    "stopTimeoutMs": 10000
  }
}
JSON
cp "$CFG" /tmp/store.json
sock_ino() { # the inode of the master's listening socket 'http'
  local fd
  fd=$(baton status -c "$CFG" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0)); console.log(s.listeners.find((l) => l.name === "http").fds[0])')
  readlink "/proc/$(prop MainPID)/fd/$fd"
}
src_of_http() { baton status -c "$CFG" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0)); console.log(s.listeners.find((l) => l.name === "http").source)'; }
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
systemctl enable --now "$U" 2>/dev/null
[ "$(systemctl is-enabled "$U")" = enabled ] && ok "systemctl enable --now $U: enabled" || bad "$U is $(systemctl is-enabled "$U")"
[ "$(prop ActiveState)" = active ] && [[ $(get) == "hello from worker"* ]] && ok "FD store: serving without the .socket unit" || bad "FD store: not serving: $(prop ActiveState)"
journalctl -q --no-pager -o cat -u "$U" --after-cursor="$cursor" | grep -q "systemd's FD store: 'http' stored" && ok "FD store: the master stored 'http'" || bad "FD store: no 'stored' line in the journal"
if [ "$sdv" -ge 254 ]; then
  systemd-analyze fdstore "$U" 2>&1 | grep -q '^ *http ' && ok "systemd-analyze fdstore $U lists http" || bad "systemd-analyze fdstore: $(systemd-analyze fdstore "$U" 2>&1 | tr '\n' '|')"
fi
ino1=$(sock_ino)

# systemctl restart under load
load_start
m1=$(prop MainPID)
t0=$(date +%s%N)
systemctl restart "$U"
until_true 30 is_active || bad "FD store: not active after the restart: $(prop ActiveState)/$(prop SubState)"
t1=$(date +%s%N)
mainpid_is_not "$m1" && ok "FD store: restarted, MainPID $m1 -> $(prop MainPID)" || bad "FD store: MainPID unchanged"
load_stop; out=$LOADED
read -r answered nfailed errors <<<"$out"
echo "INFO: systemctl restart (FD store, no .socket unit), systemd $sdv: active again after $(((t1 - t0) / 1000000)) ms; answered failed errors = $out, ECONNREFUSED $(refused "$errors")"
[ "$(refused "$errors")" = 0 ] && ok "systemctl restart under load: 0 connections refused ($answered answered)" || bad "systemctl restart under load: $(refused "$errors") refused: $errors"
zero_failed "systemctl restart (FD store) under load" "$out"
[ "$(sock_ino)" = "$ino1" ] && [ "$(src_of_http)" = config ] && ok "the same socket after the restart: $ino1, source config" || bad "after the restart: $(sock_ino) (was $ino1), source $(src_of_http)"

crash_check "FD store, no .socket unit"
[ "$(sock_ino)" = "$ino1" ] && ok "the same socket after kill -9: $ino1" || bad "after kill -9: $(sock_ino) (was $ino1)"

# a reload that adds a listener stores it; one that drops it removes it from the store
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
sed -i "s|\"listeners\": \[|\"listeners\": [{ \"name\": \"extra\", \"tcp\": \"127.0.0.1:8081\" }, |" "$CFG"
systemctl reload "$U" && [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/)" = 200 ] && ok "reload: listener extra serves" || bad "reload with extra: $(cat "$CFG")"
cp /tmp/store.json "$CFG"
systemctl reload "$U"
journalctl -q --no-pager -o cat -u "$U" --after-cursor="$cursor" | grep -q "systemd's FD store: 'extra' removed" && ok "reload without extra: removed from the store" || bad "no 'extra' removed line in the journal"
if [ "$sdv" -ge 254 ]; then
  n=$(systemd-analyze fdstore "$U" 2>&1 | grep -c '^ *\(http\|extra\) ')
  [ "$n" = 1 ] && ok "systemd-analyze fdstore: http alone again" || bad "systemd-analyze fdstore: $(systemd-analyze fdstore "$U" 2>&1 | tr '\n' '|')"
fi
curl -s -m 5 -o /dev/null http://127.0.0.1:8081/; rc=$?
[ "$rc" = 7 ] && ok "port 8081 refused once dropped (nobody keeps it)" || bad "port 8081 after the drop: curl exit $rc"

# the same restart without the store (fdStore: false, which a reload applies by emptying the
# store): connections are refused, which is what the checks above count
node -e 'const fs=require("fs"), f=process.argv[1], c=JSON.parse(fs.readFileSync(f)); c.fdStore=false; fs.writeFileSync(f, JSON.stringify(c))' "$CFG"
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
systemctl reload "$U"
journalctl -q --no-pager -o cat -u "$U" --after-cursor="$cursor" | grep -q "systemd's FD store: 'http' removed" && ok "fdStore: false by reload: 'http' removed from the store" || bad "fdStore: false: no 'removed' line"
load_start
systemctl restart "$U"
load_stop; out=$LOADED
read -r answered nfailed errors <<<"$out"
echo "INFO: systemctl restart WITHOUT the FD store, systemd $sdv: answered failed errors = $out, ECONNREFUSED $(refused "$errors")"
[ "$(refused "$errors")" -gt 0 ] && ok "without the store a restart refuses connections ($(refused "$errors"))" || bad "without the store nothing was refused: $out"
cp /tmp/store.json "$CFG"
systemctl restart "$U"

# systemctl stop: the store goes with the service, nothing restarted, nothing logged as an error
cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
systemctl stop "$U"
[ "$(prop Result)" = success ] && ok "FD store: stop, Result=success" || bad "FD store: stop: Result=$(prop Result)"
curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/"; rc=$?
[ "$rc" = 7 ] && ok "after stop port $PORT is refused: systemd dropped the store" || bad "after stop: curl exit $rc (the socket outlived the service?)"
if ! until_true 10 journal_has "$cursor" '\bstopped$' -u "$U"; then bad "FD store: the journal since the stop lacks the master's 'stopped' (cursor '$cursor')"
else
  if errs=$(since "$cursor" -u "$U" -p err | grep .); then bad "errors logged by the stop: $(tr '\n' '|' <<<"$errs")"; else ok "stop (KillMode=control-group): no error logged"; fi
  grep -q 'restarting slot' /tmp/journal.txt && bad "a worker was restarted during the stop" || ok "no worker restarted during the stop"
fi
systemctl start "$U"
[[ $(get) == "hello from worker"* ]] && ok "started again" || bad "not serving after start"

# ---- recipes (docs/recipes.md), deployed as docs/deploying.md says ----
# recipe NAME PORT BODY: the app in /opt/hello-NAME, its config in /etc/baton/NAME.json, the
# socket's address in a drop-in; enabled and started; 2 reloads and a USR2 under load
# systemd 253 renamed --kill-who= to --kill-whom=
KILL_MAIN=--kill-whom=main
[ "$sdv" -lt 253 ] && KILL_MAIN=--kill-who=main
recipe() {
  local name=$1 port=$2 want=$3 ru=baton@$1.service rs=baton@$1.socket body m old ok0
  rm -rf "/opt/hello-$name" && cp -a "/e2e/recipes/$name" "/opt/hello-$name"
  cp "/opt/hello-$name/baton.json" "/etc/baton/$name.json"
  mkdir -p "/etc/systemd/system/$rs.d"
  printf '[Socket]\nListenStream=127.0.0.1:%s\nFileDescriptorName=http\n' "$port" >"/etc/systemd/system/$rs.d/listen.conf"
  hook=RECIPE_BEFORE_${name//-/_}
  [ -n "${!hook:-}" ] && "${!hook}"
  systemctl daemon-reload
  baton check -c "/etc/baton/$name.json" >/dev/null 2>&1 && ok "recipe $name: baton check" || bad "recipe $name: baton check: $(baton check -c "/etc/baton/$name.json" 2>&1)"
  systemctl enable --now "$rs" 2>/dev/null
  body=$(curl -s -m 20 "http://127.0.0.1:$port/")
  if [[ $body == "$want"* ]]; then ok "recipe $name: serves '$body'"; else
    bad "recipe $name: got '$body'; journal: $(journalctl -q --no-pager -o cat -u "$ru" | tail -8 | tr '\n' '|')"; fi
  baton status -c "/etc/baton/$name.json" >/tmp/status.txt 2>&1 && grep -q 'generation 1' /tmp/status.txt &&
    ok "recipe $name: baton status" || bad "recipe $name: baton status: $(tr '\n' '|' </tmp/status.txt)"
  hook=RECIPE_AFTER_${name//-/_}
  [ -n "${!hook:-}" ] && "${!hook}"
  PORT=$port
  load_start
  systemctl reload "$ru" && systemctl reload "$ru" || bad "recipe $name: systemctl reload failed"
  # baton upgrade, as a package upgrade does: `systemctl kill -s USR2` would reach gunicorn's
  # own master and workers too, which take USR2 as commands of their own (docs/recipes.md)
  old=$(systemctl show -p MainPID --value "$ru")
  out=$(baton upgrade -c "/etc/baton/$name.json" 2>&1) || bad "recipe $name: baton upgrade: $out"
  m() { local p; p=$(systemctl show -p MainPID --value "$ru"); [ "$p" != "$old" ] && [ "$p" != 0 ] && ! kill -0 "$old" 2>/dev/null; }
  until_true 60 m && ok "recipe $name: $out; MainPID moved, the old master left" || bad "recipe $name: after the upgrade MainPID $(systemctl show -p MainPID --value "$ru") (was $old)"
  # USR2 to the master alone (docs/recipes.md): safe whatever the workers do with USR2
  old=$(systemctl show -p MainPID --value "$ru")
  systemctl kill -s USR2 "$KILL_MAIN" "$ru"
  until_true 60 m && ok "recipe $name: systemctl kill -s USR2 $KILL_MAIN: MainPID moved" || bad "recipe $name: after USR2 to the master MainPID $(systemctl show -p MainPID --value "$ru") (was $old)"
  load_stop; zero_failed "recipe $name: 2 reloads, baton upgrade and USR2 to the master under load" "$LOADED"
  PORT=8080
  systemctl disable --now "$rs" 2>/dev/null
  systemctl stop "$ru"
  [ "$(systemctl show -p Result --value "$ru")" = success ] && ok "recipe $name: graceful stop, Result=success" ||
    bad "recipe $name: stop: Result=$(systemctl show -p Result --value "$ru"); $(journalctl -q --no-pager -o cat -u "$ru" | tail -5 | tr '\n' '|')"
  return 0 # the callers take any other status (a shell error mid-way) as a failure
}
# the sandbox opened by a drop-in (docs/deploying.md): the Express app writes to its
# StateDirectory= only once the drop-in gives it one, after a restart
drop_in() {
  local c
  c=$(curl -s -m 10 -o /tmp/visits.out -w '%{http_code}' -X POST http://127.0.0.1:8091/visits)
  [ "$c" = 500 ] && grep -q 'no STATE_DIRECTORY' /tmp/visits.out && ok "express: without a drop-in nothing is writable" || bad "express: before the drop-in: HTTP $c $(cat /tmp/visits.out)"
  mkdir -p /etc/systemd/system/baton@express.service.d
  printf '[Service]\nStateDirectory=hello-express\n' >/etc/systemd/system/baton@express.service.d/state.conf
  systemctl daemon-reload
  systemctl restart baton@express.service
  c=$(curl -s -m 10 -o /tmp/visits.out -w '%{http_code}' -X POST http://127.0.0.1:8091/visits)
  [ "$c" = 200 ] && [ -s /var/lib/private/hello-express/visits.log ] && ok "express: StateDirectory= by a drop-in: $(cat /tmp/visits.out)" || bad "express: after the drop-in: HTTP $c $(cat /tmp/visits.out)"
}
RECIPE_AFTER_express=drop_in
recipe express 8091 "hello from express, worker" || bad "recipe express did not finish"
recipe node-unmodified 8094 "hello from an unmodified app" || bad "recipe node-unmodified did not finish"
# gunicorn as the existing www-data account, writing its access log (docs/deploying.md)
account() {
  install -d -o www-data -g www-data /var/log/hello-gunicorn
  mkdir -p /etc/systemd/system/baton@gunicorn.service.d
  cp /opt/hello-gunicorn/account.conf /etc/systemd/system/baton@gunicorn.service.d/
}
account_check() {
  local users
  users=$(ps -o user= -p "$(pgrep -d, -f /usr/bin/gunicorn)" | sort -u | tr '\n' ' ')
  [ "$users" = "www-data " ] && ok "gunicorn: runs as www-data (User= by a drop-in)" || bad "gunicorn runs as: $users"
  [ -s /var/log/hello-gunicorn/access.log ] && ok "gunicorn: writes its access log (ReadWritePaths= by a drop-in)" || bad "gunicorn: no access log: $(journalctl -q --no-pager -o cat -u baton@gunicorn.service | tail -3 | tr '\n' '|')"
}
RECIPE_BEFORE_gunicorn=account
RECIPE_AFTER_gunicorn=account_check
recipe gunicorn 8092 "hello from gunicorn, worker" || bad "recipe gunicorn did not finish"
recipe lighttpd 8093 "hello from lighttpd" || bad "recipe lighttpd did not finish"

# ---- removal ----
apt-get remove -y baton >/tmp/dpkg.log 2>&1 && ok "apt-get remove baton" || bad "apt-get remove: $(tail -3 /tmp/dpkg.log)"
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ] && ok "removal stopped it cleanly" || bad "after removal: $(prop ActiveState) $(prop Result)"
# every process of a baton unit (its cgroup), workers and their children too, not only masters
in_baton_units() { local p; for p in /proc/[0-9]*; do grep -qs 'baton@' "$p/cgroup" && echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"; done; }
left=$(in_baton_units)
[ -z "$left" ] && ! pgrep -f /usr/lib/baton >/dev/null && ok "no baton process left (no process in a baton@ unit)" || bad "processes left: $(tr '\n' '|' <<<"$left") $(pgrep -af /usr/lib/baton)"
# systemd clean, as after removing one of Debian's own packages: the deleted unit files
# forgotten (no NeedDaemonReload), no link left to them, no unit listed
links() { find /etc/systemd/system -type l -name 'baton@*' 2>/dev/null | tr '\n' ' '; }
nd=$(systemctl show -p NeedDaemonReload --value "$U" "$S" | tr '\n' ' ')
[[ $nd != *yes* ]] && ok "after remove: no NeedDaemonReload=yes ('$nd')" || bad "after remove: NeedDaemonReload=$nd"
[ -z "$(links)" ] && ok "after remove: no link to a baton unit left" || bad "after remove: links left: $(links)"
listed=$(systemctl list-units --all --plain --no-legend 'baton@*' | tr '\n' '|')
[ -z "$listed" ] && ok "after remove: systemd lists no baton unit" || bad "after remove: systemd lists $listed"
grep -q "disabled $U" /tmp/dpkg.log && ok "remove says what it disabled" || bad "remove did not say it disabled $U: $(tail -3 /tmp/dpkg.log)"

# ---- reinstall: enabled again, not started ----
dpkg -i /e2e/baton-N1.deb >/tmp/dpkg.log 2>&1
[ "$(systemctl is-enabled "$U")" = enabled ] && ok "reinstall: $U enabled again" || bad "reinstall: $U is $(systemctl is-enabled "$U"): $(tail -3 /tmp/dpkg.log)"
[ "$(prop ActiveState)" = inactive ] && ok "reinstall: $U not started" || bad "reinstall: $U is $(prop ActiveState)"

# ---- sandbox exposure ----
score=$(systemd-analyze security "$U" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "INFO: systemd-analyze security $U: $score"
awk -v s="$score" 'BEGIN{exit !(s != "" && s < 3.0)}' && ok "exposure $score < 3.0" || bad "exposure $score"


# ---- purge: nothing of baton left in systemd or /var/lib ----
apt-get purge -y baton >/tmp/dpkg.log 2>&1 && ok "apt-get purge baton" || bad "apt-get purge: $(tail -3 /tmp/dpkg.log)"
[ -z "$(links)" ] && ok "after purge: no link to a baton unit left" || bad "after purge: links left: $(links)"
listed=$(systemctl list-units --all --plain --no-legend 'baton@*' | tr '\n' '|')
[ -z "$listed" ] && ok "after purge: systemd lists no baton unit" || bad "after purge: systemd lists $listed"
[ ! -e /var/lib/baton ] && ok "after purge: no /var/lib/baton" || bad "after purge: /var/lib/baton is there: $(ls -A /var/lib/baton)"

echo "e2e $suite: $passed passed, $failed failed"
exit "$failed"
