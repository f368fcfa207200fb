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
#   PEERLINE_TURN_ALLOWED_PEER_IPS  LAN-only deployments: comma-separated addresses or first-last
#                              ranges (coturn's form, e.g. 192.168.1.0-192.168.1.255) that relays
#                              may reach although they are private; empty (default): none
set -eu
# No pathname expansion: the address lists below are split into words, never matched to files.
set -f

: "${PEERLINE_TURN_SECRET:?PEERLINE_TURN_SECRET is empty: set it in .env (same value for web and coturn)}"
realm=${PEERLINE_TURN_REALM:-localhost}
min_port=${PEERLINE_TURN_MIN_PORT:-20000}
max_port=${PEERLINE_TURN_MAX_PORT:-20200}
port=${PEERLINE_TURN_PORT:-3478}

external_ip=${PEERLINE_TURN_EXTERNAL_IP:-}
if [ -z "$external_ip" ] && command -v detect-external-ip >/dev/null 2>&1; then
  external_ip=$(detect-external-ip 2>/dev/null || true)
fi

# Relays never reach an address that is not on the public internet: TURN credentials go to
# anyone who can sign up, and a relay is a UDP socket on this host, inside its networks. So no
# loopback (this host), no RFC 1918 (the Docker networks with PostgreSQL, Redis and web, and the
# host's own LAN), no CGNAT (the provider's network), no "this network", link-local (cloud
# metadata services live there), multicast or reserved space, and the IPv6 counterparts: ULA,
# link-local, multicast, and IPv4-mapped addresses (which would reach the IPv4 ranges above).
# One address or first-last range per line, as coturn reads them.
denied_peers="
0.0.0.0-0.255.255.255
10.0.0.0-10.255.255.255
100.64.0.0-100.127.255.255
127.0.0.0-127.255.255.255
169.254.0.0-169.254.255.255
172.16.0.0-172.31.255.255
192.0.0.0-192.0.0.255
192.168.0.0-192.168.255.255
198.18.0.0-198.19.255.255
224.0.0.0-255.255.255.255
::
::1
::ffff:0.0.0.0-::ffff:255.255.255.255
fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff
ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
"

# The opt-in for a LAN-only setup, where the browsers themselves have private addresses: coturn
# lets an allowed address through whatever the denied list says. Only address characters pass, so
# the value cannot add other lines to the configuration.
allowed_peers=$(printf '%s' "${PEERLINE_TURN_ALLOWED_PEER_IPS:-}" | tr ',' '\n')
for peer in $allowed_peers; do
  case $peer in
    *[!0-9A-Fa-f.:-]*)
      echo "coturn: PEERLINE_TURN_ALLOWED_PEER_IPS: '$peer' is not an address or first-last range" >&2
      exit 1 ;;
  esac
done

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
log-file=stdout
simple-log
pidfile=$conf.pid
CONF
for peer in $denied_peers; do
  echo "denied-peer-ip=$peer" >> "$conf"
done
for peer in $allowed_peers; do
  echo "allowed-peer-ip=$peer" >> "$conf"
  echo "coturn: relays may reach $peer (PEERLINE_TURN_ALLOWED_PEER_IPS)"
done
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
