#!/usr/bin/env bash
# Fuzzes the admin API from its own OpenAPI document with schemathesis (`--checks all`): every
# operation, generated valid and invalid inputs, responses checked against the document.
# Loopback only: the server listens on 127.0.0.1 and schemathesis talks to nothing else.
# Usage: scripts/fuzz-api.sh [max-examples per operation, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/proto-trainer
venv=$cache/schemathesis
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
cargo build -q --bin proto-trainer
bin=target/debug/proto-trainer
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$work/fuzz.db?mode=rwc" PORT=$port BIND_ADDR=127.0.0.1
# Generous limits: the fuzzer sends thousands of requests and must not measure the rate limiter.
for name in LOGIN_PER_IP LOGIN_PER_ACCOUNT CHAT_MESSAGE EVALUATE ANALYZE FLAG UPLOAD; do
  export "RATE_LIMIT_$name=1000000/60"
done
password=fuzz-password-not-a-secret
export INTERNAL_SERVICE_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$password" | $bin account create --name "Fuzz Center" --admin-email admin@fuzz.test --password-stdin >/dev/null
$bin serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
login=$(curl -si "http://127.0.0.1:$port/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"admin@fuzz.test\",\"password\":\"$password\"}")
cookie=$(printf '%s' "$login" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
csrf=$(printf '%s' "$login" | sed -n 's/.*"csrfToken":"\([^"]*\)".*/\1/p')
[ -n "$cookie" ] && [ -n "$csrf" ] || { echo "could not sign in: $login" >&2; exit 1; }
key=$(curl -sf "http://127.0.0.1:$port/api/api-keys" -H 'content-type: application/json' -H "cookie: $cookie" \
  -H "x-csrf-token: $csrf" -H "origin: http://127.0.0.1:$port" -d '{"name":"fuzz"}' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$key" ] || { echo "could not create an API key" >&2; exit 1; }
# Credentials through the document's own security schemes, so the fuzzer knows which parameter
# is which credential (and leaves each out when it tests that a route refuses a missing one).
cat >"$work/st.toml" <<TOML
[auth.openapi.session]
api_key = "${cookie#pt_session=}"
[auth.openapi.api_key]
api_key = "$key"
[auth.openapi.internal_key]
api_key = "$INTERNAL_SERVICE_KEY"
TOML
# Signing out, changing or resetting a password, or deactivating users would end the fuzzer's
# own session midway.
"$venv/bin/st" --config-file "$work/st.toml" run "http://127.0.0.1:$port/api/openapi.json" --checks all \
  --max-examples "$examples" --exclude-path /api/auth/logout --exclude-path /api/auth/password \
  --exclude-path-regex '^/api/users/\{id\}' \
  -H "x-csrf-token: $csrf" -H "origin: http://127.0.0.1:$port" \
  --report-dir "$work/report" "${@:2}" || status=$?
grep -E '"level":"ERROR"|ERROR' "$work/server.log" | tail -20 || true
exit "${status:-0}"
