# Helpers the live test and benchmark scripts share (sourced, not run).

# wait_port PORT [TRIES]: polls 127.0.0.1:PORT every 0.1 s, TRIES times (default 100).
wait_port() {
  local _
  for _ in $(seq "${2:-100}"); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# wait_exit PID [TRIES]: waits for this shell's child PID to exit, polling every 0.1 s TRIES times
# (default 150), and sets EXIT_STATUS to its status (124: it was still running).
wait_exit() {
  local _
  EXIT_STATUS=124
  for _ in $(seq "${2:-150}"); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1" && EXIT_STATUS=0 || EXIT_STATUS=$?
      return 0
    fi
    sleep 0.1
  done
}

# dump_logs FILE...: on failure, the tails of the named logs in $LOG_DIR go to stderr, so a CI log
# alone shows why (CI does not keep $LOG_DIR). ANSI colours are stripped; lines are cut to a
# readable width (server lines carry long JSON context); server.log gets more lines.
dump_logs() {
  local f lines
  for f in "$@"; do
    [[ -s "$LOG_DIR/$f" ]] || continue
    lines=60
    [[ $f == server.log ]] && lines=80
    echo "----- $f (last $lines lines) -----" >&2
    tail -n "$lines" "$LOG_DIR/$f" | sed -e 's/\x1b\[[0-9;]*m//g' | cut -c1-400 >&2
  done
  echo "----- end of logs ($LOG_DIR) -----" >&2
}

# make_log_dir NAME: the LOG_DIR given, or a new temporary one that the run then owns
# (LOG_DIR_OWNED=1): finish_log_dir deletes an owned one, so repeated runs (each live test's
# binaries, databases and recordings; the scale test's alone about 200 MB) do not fill the disk.
make_log_dir() {
  if [[ -z "${LOG_DIR:-}" ]]; then
    LOG_DIR="$(mktemp -d "/tmp/$1.XXXXXX")"
    export LOG_DIR_OWNED=1
  fi
  export LOG_DIR
}

# log_dir_goes STATUS: whether a run ending with STATUS deletes its LOG_DIR: an owned one, when the
# run passed or under CI (the tails of its logs were printed already); a failed local run keeps it.
log_dir_goes() {
  [[ -n "${LOG_DIR_OWNED:-}" && ($1 == 0 || -n "${CI:-}") ]]
}

# finish_log_dir STATUS: deletes the LOG_DIR if log_dir_goes, else says where it is kept.
finish_log_dir() {
  [[ -d "${LOG_DIR:-}" ]] || return 0
  if log_dir_goes "$1"; then
    rm -rf "$LOG_DIR"
  elif [[ -n "${LOG_DIR_OWNED:-}" ]]; then
    echo "logs kept in $LOG_DIR" >&2
  fi
}

# logs_note STATUS: where the logs stay, for a run's last line; nothing when they will be deleted.
logs_note() {
  log_dir_goes "$1" || echo " (logs in $LOG_DIR)"
}
