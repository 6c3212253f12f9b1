#!/usr/bin/env bash
# Installs the tools `cargo xtask deploy-check` runs, pinned, into the project's tool cache
# (PROTO_TRAINER_CACHE, default ~/.cache/proto-trainer):
#   - helm and kubeconform, built with `go install` (no prebuilt downloads);
#   - a Python venv with podman-compose (renders compose.yaml) and kubernetes-validate, whose
#     wheel carries the Kubernetes JSON schemas kubeconform reads offline (kubeconform would
#     otherwise fetch them from the network at run time);
#   - systemd-analyze, podman, runc, debootstrap (Debian packages) when missing.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.7.0}"
PY_PACKAGES=(podman-compose==1.6.0 kubernetes-validate==1.37.0)
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
BIN="$CACHE/bin"
VENV="$CACHE/deploy-venv"
mkdir -p "$BIN"

log() { printf '[deploy-tools] %s\n' "$*" >&2; }

# One pinned Go tool: built once per version (a marker file names the version installed).
go_tool() {
  local name="$1" pkg="$2" version="$3"
  if [[ -x "$BIN/$name" && "$(cat "$BIN/$name.version" 2>/dev/null)" == "$version" ]]; then
    log "$name $version already installed"
    return
  fi
  log "building $name $version with go install"
  local start
  start=$(date +%s)
  GOBIN="$BIN" GOFLAGS=-mod=mod go install "$pkg@$version"
  echo "$version" >"$BIN/$name.version"
  log "$name built in $(($(date +%s) - start))s"
}

go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import kubernetes_validate, podman_compose' 2>/dev/null; then
  log "installing ${PY_PACKAGES[*]}"
  "$VENV/bin/pip" install --quiet "${PY_PACKAGES[@]}"
fi

# systemd-analyze (verify the units), podman + runc (build and run the image; crun fails here),
# debootstrap (the image's Debian base from Debian's packages), strip (binutils).
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v strip >/dev/null || missing+=(binutils)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "ready: $BIN/helm, $BIN/kubeconform, $VENV"
