#!/usr/bin/env bash
# Runs a command inside a fresh network namespace that can reach nothing but itself.
#
# WebRTC peers gather ICE candidates on every interface they can see; inside this namespace
# nothing leads off the machine, so no test peer can send to a private-range or public address.
#
# The namespace has `lo` plus one veth pair whose only IPv4 address is 127.0.0.2 (IPv6 off).
# Why the veth: LiveKit's native WebRTC (libwebrtc, inside the Python `livekit` wheel) ignores
# loopback *adapters*, so with `lo` alone it gathers no candidate and never connects. An address
# from the loopback range on a non-loopback adapter is gathered, and all its traffic is still
# local (127.0.0.0/8 is routed through `lo`). The pair's other end has no address.
#
# Needs root. The namespace and its interfaces die with the command.
# usage: netns-run.sh CMD [ARGS...]
set -euo pipefail
if (($# == 0)); then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
exec unshare --net -- sh -c '
  set -e
  ip link set lo up
  ip link add lkv0 type veth peer name lkv1
  for i in lkv0 lkv1; do
    echo 1 >/proc/sys/net/ipv6/conf/$i/disable_ipv6
    ip link set "$i" up
  done
  ip addr add 127.0.0.2/32 dev lkv0
  exec "$@"' netns-run "$@"
