#!/bin/sh
# Bridge-mode topology for tests and demos (SPEC §7), entirely inside network namespaces:
#   zkmb-client (10.253.0.1, veth zc0) -- [zkmb-bridge: br0 10.253.0.254] -- zkmb-resolver (10.253.0.2, veth zr0)
# In zkmb-bridge, bridged IPv4 TCP to/from port 853 goes to NFQUEUE $QUEUE (no --queue-bypass: while no
# `zkmb middlebox --bridge $QUEUE --allow 10.253.0.2` listens, DoT is dropped -- fail closed); IP
# fragments and IPv6 DoT are dropped; everything else is bridged untouched.  These addresses exist only
# inside the namespaces.
# QUEUE is one queue number N (`zkmb middlebox --bridge N`) or a range N:M, installed as
# `--queue-balance N:M` (`zkmb middlebox --bridge N:M`: one verifier process per queue; the kernel keeps
# every packet of a connection, both directions, on one queue).
# Usage: sudo scripts/bridge-setup.sh [QUEUE|FIRST:LAST]        (undo: scripts/bridge-teardown.sh)
set -eu
QUEUE="${1:-0}"
case "$QUEUE" in
  *:*) TARGET="--queue-balance $QUEUE" ;;
  *) TARGET="--queue-num $QUEUE" ;;
esac
IPT="${IPTABLES:-iptables}"
IP6T="${IP6TABLES:-ip6tables}"
C=zkmb-client B=zkmb-bridge R=zkmb-resolver

for ns in $C $B $R; do ip netns add "$ns"; done
ip link add zc0 netns $C type veth peer name bc0 netns $B
ip link add zr0 netns $R type veth peer name br0r netns $B
ip -n $B link add br0 type bridge
ip -n $B link set bc0 master br0
ip -n $B link set br0r master br0
for ns in $C $B $R; do ip -n "$ns" link set lo up; done
ip -n $B link set bc0 up
ip -n $B link set br0r up
ip -n $B link set br0 up
ip -n $B addr add 10.253.0.254/24 dev br0
ip -n $C addr add 10.253.0.1/24 dev zc0
ip -n $C link set zc0 up
ip -n $R addr add 10.253.0.2/24 dev zr0
ip -n $R link set zr0 up

ip netns exec $B sysctl -qw net.bridge.bridge-nf-call-iptables=1
ip netns exec $B sysctl -qw net.bridge.bridge-nf-call-ip6tables=1
ip netns exec $B "$IPT" -A FORWARD -f -j DROP
# shellcheck disable=SC2086 # TARGET is two words on purpose
ip netns exec $B "$IPT" -A FORWARD -p tcp --dport 853 -j NFQUEUE $TARGET
# shellcheck disable=SC2086
ip netns exec $B "$IPT" -A FORWARD -p tcp --sport 853 -j NFQUEUE $TARGET
if command -v "$IP6T" >/dev/null 2>&1; then
  ip netns exec $B "$IP6T" -A FORWARD -p tcp --dport 853 -j DROP
  ip netns exec $B "$IP6T" -A FORWARD -p tcp --sport 853 -j DROP
fi
echo "bridge ready: client 10.253.0.1, resolver 10.253.0.2, middlebox 10.253.0.254, queue(s) $QUEUE"
