#!/bin/sh
# coturn for Peerline (docker-compose.yml's coturn service runs this in the coturn/coturn image).
#
# Writes a configuration file from the environment and starts turnserver with it, so the shared
# secret never appears on a command line. Environment:
#   PEERLINE_TURN_SECRET       REQUIRED: the same value as the web service's (TURN REST credentials)
#   PEERLINE_TURN_REALM        usually the domain
#   PEERLINE_TURN_EXTERNAL_IP  the address browsers reach this host at (public IP, or LAN IP for a
#                              LAN-only setup); empty: ask the image's detect-external-ip
#   PEERLINE_TURN_MIN_PORT / PEERLINE_TURN_MAX_PORT  the relay range, as published by compose
#   PEERLINE_TURN_PORT, PEERLINE_TURN_LISTEN_IP      where to listen (default 3478, every address;
#                              tests/test_deployment.py runs this script on a free port)
set -eu

: "${PEERLINE_TURN_SECRET:?PEERLINE_TURN_SECRET is empty: set it in .env (same value for web and coturn)}"
realm=${PEERLINE_TURN_REALM:-localhost}
min_port=${PEERLINE_TURN_MIN_PORT:-20000}
max_port=${PEERLINE_TURN_MAX_PORT:-20200}
port=${PEERLINE_TURN_PORT:-3478}

external_ip=${PEERLINE_TURN_EXTERNAL_IP:-}
if [ -z "$external_ip" ] && command -v detect-external-ip >/dev/null 2>&1; then
  external_ip=$(detect-external-ip 2>/dev/null || true)
fi

umask 077
conf=$(mktemp "${TMPDIR:-/tmp}/turnserver.XXXXXX")
cat > "$conf" <<CONF
listening-port=$port
min-port=$min_port
max-port=$max_port
use-auth-secret
static-auth-secret=$PEERLINE_TURN_SECRET
realm=$realm
fingerprint
no-cli
no-tls
no-dtls
no-multicast-peers
# Browsers relay UDP only; TCP relays would let a TURN user open TCP connections to anything.
no-tcp-relay
# Never relay into this host or the Docker networks (PostgreSQL, Redis, the web service).
denied-peer-ip=0.0.0.0-0.255.255.255
denied-peer-ip=127.0.0.0-127.255.255.255
denied-peer-ip=169.254.0.0-169.254.255.255
denied-peer-ip=172.16.0.0-172.31.255.255
denied-peer-ip=::1
log-file=stdout
simple-log
pidfile=$conf.pid
CONF
if [ -n "${PEERLINE_TURN_LISTEN_IP:-}" ]; then
  echo "listening-ip=$PEERLINE_TURN_LISTEN_IP" >> "$conf"
fi
if [ -n "$external_ip" ]; then
  echo "external-ip=$external_ip" >> "$conf"
  echo "coturn: relay addresses announced as $external_ip"
else
  echo "coturn: WARNING: no external IP (set PEERLINE_TURN_EXTERNAL_IP); relays will announce the container's address" >&2
fi
echo "coturn: port $port, realm $realm, relay ports $min_port-$max_port"
exec turnserver -c "$conf"
