#!/usr/bin/env bash
# Renders livekit.yaml.template to stdout from LK_* environment variables (with test defaults).
# The dev key pair is generated per run by the test scripts; nothing secret is stored.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${LK_PORT:=7880}" "${LK_UDP_PORT:=7882}" "${LK_TCP_PORT:=7881}" "${LK_LOG_LEVEL:=info}"
: "${LK_API_KEY:?set LK_API_KEY}" "${LK_API_SECRET:?set LK_API_SECRET}"
export LK_PORT LK_UDP_PORT LK_TCP_PORT LK_LOG_LEVEL LK_API_KEY LK_API_SECRET
envsubst '${LK_PORT} ${LK_UDP_PORT} ${LK_TCP_PORT} ${LK_LOG_LEVEL} ${LK_API_KEY} ${LK_API_SECRET}' \
  <"$here/livekit.yaml.template"
