#!/usr/bin/env bash
# Cuts a process's signal WebSockets to livekit-server mid-call, as a network fault would:
# the kernel aborts the TCP connections (ss -K), so the process sees them fail.
# usage: cut-signal.sh PID SERVER_PORT [KEEP_LOCAL_PORT...]
#   KEEP_LOCAL_PORT: connections to leave alone (e.g. the worker's /agent socket).
set -euo pipefail
pid=$1 server_port=$2
shift 2
keep=" $* "
ports=$(ss -tnpH state established "( dport = :$server_port )" | grep "pid=$pid," |
  awk '{print $3}' | sed 's/.*://')
for port in $ports; do
  [[ "$keep" == *" $port "* ]] && continue
  # ss -K prints a harmless netlink error for the already-closed peer half; keep stderr quiet.
  ss -K state established "( sport = :$port and dport = :$server_port )" >/dev/null 2>&1 || true
  echo "cut signal connection from local port $port" >&2
done
