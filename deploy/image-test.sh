#!/usr/bin/env bash
# Builds the container image and checks it answers: /readyz, the image's own HEALTHCHECK, a
# sign-in and one chat practice (the simulator as OpenAI), non-root, no build tools inside.
#
# No registry image can be pulled on the machines this runs on, so the base is Debian bookworm
# made here with debootstrap (cached in target/image/) and imported with `podman import`, and
# the binary is the host's build (`--target prebuilt`): BINARY (default target/release/
# proto-trainer, else target/debug/proto-trainer; it embeds web/dist, so build the UI first).
# Elsewhere `podman build -f deploy/Containerfile .` builds everything from registry images.
#
# Podman here: cgroup v1 with a v2 mount beside it and hard rlimits, where crun and the default
# cgroup manager fail; runc with the cgroupfs manager and explicit ulimits work (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$target/image"
mkdir -p "$work"
log() { printf '[image-test] %s\n' "$*" >&2; }
podman=(podman --cgroup-manager=cgroupfs)
runtime=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
image=localhost/proto-trainer:test
base="${BASE:-localhost/proto-trainer-base:bookworm}"

binary="${BINARY:-}"
if [[ -z "$binary" ]]; then
  for candidate in "$target/release/proto-trainer" "$target/debug/proto-trainer"; do
    [[ -x "$candidate" ]] && binary="$candidate" && break
  done
fi
[[ -n "$binary" && -x "$binary" ]] || { echo "image-test: no binary (cargo build --bin proto-trainer)" >&2; exit 1; }
sim="${SIM:-$(dirname "$binary")/openai-sim}"
[[ -x "$sim" ]] || { echo "image-test: no simulator at $sim (cargo build -p proto-trainer-openai-sim)" >&2; exit 1; }

# --- the base: Debian bookworm from Debian's packages -----------------------------------------
if [[ -z "${BASE:-}" ]] && ! "${podman[@]}" image exists "$base"; then
  if [[ ! -f "$work/bookworm.tar" ]]; then
    mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    log "debootstrap bookworm (minbase) from $mirror"
    rm -rf "$work/rootfs"
    start=$(date +%s)
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log"; exit 1; }
    # Without the downloaded packages and indexes (the runtime stage fetches fresh ones).
    tar -C "$work/rootfs" --exclude=./var/cache/apt/archives --exclude=./var/lib/apt/lists -cf "$work/bookworm.tar" .
    rm -rf "$work/rootfs"
    log "base made in $(($(date +%s) - start))s"
  fi
  "${podman[@]}" import -q "$work/bookworm.tar" "$base" >/dev/null
fi

# --- the image ---------------------------------------------------------------------------------
context="$work/context"
rm -rf "$context" && mkdir -p "$context"
cp "$binary" "$context/proto-trainer"
strip "$context/proto-trainer" 2>/dev/null || true
start=$(date +%s)
# Docker format: OCI image configs have no HEALTHCHECK.
"${podman[@]}" build "${runtime[@]}" --format docker --network host -q -f deploy/Containerfile --target prebuilt \
  --build-arg "BASE=$base" -t "$image" "$context" >/dev/null
build_secs=$(($(date +%s) - start))
# The image this replaced keeps its layers as an untagged image: one per run (about 300 MB) adds
# up on a machine that runs CI again and again.
"${podman[@]}" image prune -f >/dev/null 2>&1 || true
size=$("${podman[@]}" image inspect "$image" --format '{{.Size}}')
log "image built in ${build_secs}s ($((size / 1048576)) MiB, binary $(basename "$(dirname "$binary")"))"

# --- run it: SQLite inside, the simulator on the host as OpenAI ----------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
port=$(free_port)
"$sim" --bind "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
sim_pid=$!
name="proto-trainer-image-test-$$"
cleanup() {
  "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
  kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT
# --no-healthcheck: podman would schedule it with systemd timers, absent here; the script runs
# the same probe itself and checks the image carries the HEALTHCHECK.
"${podman[@]}" run -d "${runtime[@]}" --no-healthcheck --name "$name" --network host \
  -e PORT="$port" -e BIND_ADDR=127.0.0.1 -e OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1" \
  -e OPENAI_API_KEY=sk-image-test "$image" >/dev/null
base_url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$base_url/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base_url/readyz" >/dev/null || { "${podman[@]}" logs "$name" | tail -20; echo "image-test: /readyz never answered" >&2; exit 1; }
log "/readyz answers"

uid=$("${podman[@]}" exec "$name" id -u)
[[ "$uid" != 0 ]] || { echo "image-test: the container runs as root" >&2; exit 1; }
for tool in cc gcc cargo rustc npm node make cmake; do
  if "${podman[@]}" exec "$name" sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "image-test: build tool $tool is in the runtime image" >&2
    exit 1
  fi
done
# The image's own HEALTHCHECK (it probes port 3003: give it this run's port).
"${podman[@]}" exec "$name" proto-trainer doctor --probe "http://127.0.0.1:$port/readyz"
health=$("${podman[@]}" image inspect "$image" --format '{{json .Config.Healthcheck}}')
[[ "$health" == *"/readyz"* ]] || { echo "image-test: no HEALTHCHECK in the image: $health" >&2; exit 1; }
log "runs as uid $uid; no build tools; HEALTHCHECK present and its probe answers"

# First run: the account and its admin, as the README says.
email=admin@image-test.example.org
password='image-test password 0123'
printf '%s\n' "$password" | "${podman[@]}" exec -i "$name" proto-trainer account create \
  --name "Image Test Center" --admin-email "$email" --password-stdin >/dev/null
jar="$work/cookies"
rm -f "$jar"
login=$(curl -fsS -c "$jar" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base_url/api/auth/login")
csrf=$(printf '%s' "$login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrfToken"])')
log "signed in"
post() {
  curl -fsS -b "$jar" -H 'content-type: application/json' -H "x-csrf-token: $csrf" -H "origin: $base_url" -d "$2" "$base_url$1"
}
started=$(post /api/sessions '{}')
session=$(printf '%s' "$started" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["id"])')
reply=$(post "/api/sessions/$session/message" '{"content":"Crisis line, I am here with you. What is going on tonight?"}')
printf '%s' "$reply" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["caller"]["text"].strip(), r'
transcript=$(curl -fsS -b "$jar" "$base_url/api/sessions/$session")
turns=$(printf '%s' "$transcript" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["transcript"]))')
[[ "$turns" -ge 3 ]] || { echo "image-test: expected the opening, a message and a reply; got $turns turns" >&2; exit 1; }
log "chat practice: $turns turns stored"
echo "image-test: ok (build ${build_secs}s, image $((size / 1048576)) MiB)"
