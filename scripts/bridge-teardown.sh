#!/bin/sh
# Remove the namespaces made by scripts/bridge-setup.sh (their links, bridge and rules go with them).
for ns in zkmb-client zkmb-bridge zkmb-resolver; do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$ns" 2>/dev/null
done
exit 0
