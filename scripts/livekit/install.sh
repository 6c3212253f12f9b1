#!/usr/bin/env bash
# Installs the real peers the agent's end-to-end tests run against:
#   - livekit-server (built from source with `go install`, cached by version),
#   - a Python venv with LiveKit's Python SDK (its wheel carries LiveKit's native WebRTC),
#     and soundfile (libsndfile: an independent Ogg/Opus decoder for checking recordings),
#   - espeak-ng and sox (test speech and audio analysis),
#   - for the scale-out test (scale-test.sh): Redis (two livekit-server nodes share it) and
#     PostgreSQL (the admin replicas share it), Debian's packages.
# Idempotent: each step is skipped when its result is already present. Runs OUTSIDE any network
# namespace (it needs the package registries); the tests then run inside one (see netns-run.sh).
set -euo pipefail

LIVEKIT_SERVER_VERSION="${LIVEKIT_SERVER_VERSION:-v1.13.5}"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
BIN="$CACHE/bin"
VENV="$CACHE/livekit-venv"
# Python packages pinned so a clean machine gets what the tests were written against.
PY_PACKAGES=(livekit==1.2.1 livekit-api==1.2.2 numpy soundfile==0.13.1)

mkdir -p "$BIN"

log() { printf '[install] %s\n' "$*" >&2; }

# --- livekit-server ---------------------------------------------------------------------------
# The version marker file lets a later run skip the (slow) build when the right version is there.
server="$BIN/livekit-server"
marker="$BIN/livekit-server.version"
if [[ -x "$server" && -f "$marker" && "$(cat "$marker")" == "$LIVEKIT_SERVER_VERSION" ]]; then
  log "livekit-server $LIVEKIT_SERVER_VERSION already installed at $server"
else
  log "building livekit-server $LIVEKIT_SERVER_VERSION with go install (takes minutes)"
  start=$(date +%s)
  GOBIN="$BIN" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_SERVER_VERSION"
  mv -f "$BIN/server" "$server"
  echo "$LIVEKIT_SERVER_VERSION" >"$marker"
  log "livekit-server built in $(( $(date +%s) - start ))s"
fi

# --- Python client ----------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import livekit.rtc, livekit.api, numpy, soundfile' 2>/dev/null; then
  log "installing ${PY_PACKAGES[*]}"
  "$VENV/bin/pip" install --quiet "${PY_PACKAGES[@]}"
fi

# --- system tools: speech and audio, namespaces, build ----------------------------------------
# ip/ss (namespace setup, socket cuts), envsubst (config template), cmake (libopus is built
# from source by the agent's `opus` dependency).
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v ss >/dev/null || missing+=(iproute2)
command -v cmake >/dev/null || missing+=(cmake)
command -v envsubst >/dev/null || missing+=(gettext-base)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v psql >/dev/null || missing+=(postgresql-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2046 # de-duplicated package names, no spaces
  apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

log "ready: $server, $VENV"
