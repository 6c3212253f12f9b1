#!/usr/bin/env bash
# Installs Proto Trainer as a systemd service on one box (Debian 12 or similar), as root:
#   sudo deploy/install.sh --binary target/release/proto-trainer [--livekit-server PATH] [--no-start]
# It creates the `proto-trainer` system user, copies the binary to /usr/local/bin, the units to
# /etc/systemd/system, writes /etc/proto-trainer/proto-trainer.env (only if missing: an
# existing one is never overwritten) and `proto-trainer-ctl` (any subcommand as the service
# user with its settings: `proto-trainer-ctl doctor`), and enables and starts the service.
# With --livekit-server it also installs livekit-server, its unit and a fresh key pair, shared
# with proto-trainer.env. Re-running upgrades the binary and units and restarts.
#
# ROOT=/some/dir installs into that directory instead of / (it needs etc/passwd and etc/group
# there): units are enabled with `systemctl --root` and nothing is started. `cargo xtask
# deploy-check` installs this way and runs `systemd-analyze verify --root` on the result.
set -euo pipefail

ROOT="${ROOT:-}"
here="$(cd "$(dirname "$0")" && pwd)"
binary=""
livekit=""
start=1
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --livekit-server) livekit="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
log() { printf '[install] %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (sudo deploy/install.sh ...)"
if [[ -z "$binary" ]]; then
  for candidate in "$here/../target/release/proto-trainer" "$(command -v proto-trainer || true)"; do
    [[ -n "$candidate" && -x "$candidate" ]] && binary="$candidate" && break
  done
fi
[[ -n "$binary" && -x "$binary" ]] || die "no binary: build it (cargo build --release) and pass --binary PATH"
[[ -z "$livekit" || -x "$livekit" ]] || die "--livekit-server $livekit is not an executable"
if [[ -n "$ROOT" ]]; then
  [[ "$ROOT" == /* && -f "$ROOT/etc/passwd" && -f "$ROOT/etc/group" ]] || die "ROOT must be an absolute path holding etc/passwd and etc/group"
  start=0
fi

# --- the user ---------------------------------------------------------------------------------
root_args=()
[[ -n "$ROOT" ]] && root_args=(--root "$ROOT")
if ! grep -q '^proto-trainer:' "$ROOT/etc/passwd"; then
  log "creating system user proto-trainer"
  useradd "${root_args[@]}" --system --user-group --home-dir /var/lib/proto-trainer --no-create-home \
    --shell /usr/sbin/nologin --comment "Proto Trainer service" proto-trainer
fi
gid="$(awk -F: '$1 == "proto-trainer" { print $3 }' "$ROOT/etc/group")"

# --- files ------------------------------------------------------------------------------------
log "installing $binary as /usr/local/bin/proto-trainer"
install -D -m 0755 "$binary" "$ROOT/usr/local/bin/proto-trainer"
install -D -m 0644 "$here/systemd/proto-trainer.service" "$ROOT/etc/systemd/system/proto-trainer.service"
install -D -m 0644 "$here/../README.md" "$ROOT/usr/local/share/doc/proto-trainer/README.md"
install -D -m 0644 "$here/README.md" "$ROOT/usr/local/share/doc/proto-trainer/deploy.md"
cat >"$ROOT/usr/local/bin/proto-trainer-ctl" <<'CTL'
#!/bin/sh
# Runs `proto-trainer <subcommand>` as the service runs: its user, its environment file, its
# working directory. E.g. `proto-trainer-ctl doctor`, `proto-trainer-ctl backup
# /var/lib/proto-trainer/backups/$(date +%F).db`, `proto-trainer-ctl account create --name ...`.
exec systemd-run --quiet --pipe --wait --collect --service-type=exec \
  -p User=proto-trainer -p Group=proto-trainer -p StateDirectory=proto-trainer \
  -p EnvironmentFile=/etc/proto-trainer/proto-trainer.env -p WorkingDirectory=/var/lib/proto-trainer \
  /usr/local/bin/proto-trainer "$@"
CTL
chmod 0755 "$ROOT/usr/local/bin/proto-trainer-ctl"

env_file="$ROOT/etc/proto-trainer/proto-trainer.env"
fresh_env=0
if [[ ! -f "$env_file" ]]; then
  log "writing $env_file (edit it: OPENAI_API_KEY, PUBLIC_URL)"
  install -D -m 0640 -o 0 -g "$gid" "$here/systemd/proto-trainer.env" "$env_file"
  fresh_env=1
fi

units=(proto-trainer.service)
if [[ -n "$livekit" ]]; then
  log "installing livekit-server"
  install -D -m 0755 "$livekit" "$ROOT/usr/local/bin/livekit-server"
  install -D -m 0644 "$here/systemd/livekit-server.service" "$ROOT/etc/systemd/system/livekit-server.service"
  [[ -f "$ROOT/etc/livekit/livekit.yaml" ]] || install -D -m 0644 "$here/systemd/livekit.yaml" "$ROOT/etc/livekit/livekit.yaml"
  if [[ ! -f "$ROOT/etc/livekit/livekit.env" ]]; then
    key="API$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    secret="$(head -c 33 /dev/urandom | base64 | tr -d '/+=\n')"
    install -D -m 0600 /dev/null "$ROOT/etc/livekit/livekit.env"
    printf '# The key pair livekit-server accepts (install.sh generated it; proto-trainer.env has it too).\nLIVEKIT_KEYS="%s: %s"\n' \
      "$key" "$secret" >"$ROOT/etc/livekit/livekit.env"
    if ((fresh_env)); then
      sed -i -e "s|^LIVEKIT_URL=.*|LIVEKIT_URL=ws://127.0.0.1:7880|" -e "s|^LIVEKIT_API_KEY=.*|LIVEKIT_API_KEY=$key|" \
        -e "s|^LIVEKIT_API_SECRET=.*|LIVEKIT_API_SECRET=$secret|" "$env_file"
    else
      log "NOTE: put LIVEKIT_API_KEY=$key and the secret from /etc/livekit/livekit.env into $env_file"
    fi
  fi
  units+=(livekit-server.service)
fi

# --- systemd ----------------------------------------------------------------------------------
if [[ -n "$ROOT" ]]; then
  systemctl --root="$ROOT" enable "${units[@]}"
  log "installed into $ROOT (enabled, not started)"
  exit 0
fi
if [[ ! -d /run/systemd/system ]]; then
  systemctl enable "${units[@]}" || true
  log "systemd is not running here: installed and enabled; on a booted machine run: systemctl start ${units[*]}"
  exit 0
fi
systemctl daemon-reload
systemctl enable "${units[@]}"
if ((start)); then
  systemctl restart "${units[@]}"
  log "started; status: systemctl status proto-trainer; logs: journalctl -u proto-trainer -f"
fi
cat >&2 <<NEXT
[install] next steps:
  1. edit /etc/proto-trainer/proto-trainer.env (OPENAI_API_KEY, PUBLIC_URL), then systemctl restart proto-trainer
  2. proto-trainer-ctl doctor
  3. proto-trainer-ctl account create --name "Your Center" --admin-email you@example.org
  4. put a TLS proxy in front (deploy/README.md, "TLS in front")
NEXT
