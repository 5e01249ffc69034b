#!/usr/bin/env bash
# Records the captures/linux-http case from real Linux TCP stacks: two "guest" network
# namespaces (primary and secondary, COLO twins with the same IP and MAC) each serve the same
# deterministic HTTP content to their own client namespace; curl fetches the same URL from each
# with the same source port, and dumpcap records each guest's side of the wire as pcapng.
# Needs root, iproute2, dumpcap, curl and python3. Every namespace it makes has a per-run name
# and is removed on exit, even on failure.
#
# usage: scripts/record-twin-http.sh OUTDIR [BYTES]
set -euo pipefail
out=${1:?usage: record-twin-http.sh OUTDIR [BYTES]}
bytes=${2:-150000}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tag=$(printf 'cpx%04x' $((RANDOM)))
work=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for side in p s; do
    ip netns del "$tag-$side-guest" 2>/dev/null || true
    ip netns del "$tag-$side-client" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/content.bin" "$bytes" <<'PY'
import random, sys
random.seed(20261126)
open(sys.argv[1], 'wb').write(bytes(random.getrandbits(8) for _ in range(int(sys.argv[2]))))
PY

for side in p s; do
  g="$tag-$side-guest"; c="$tag-$side-client"
  ip netns add "$g"; ip netns add "$c"
  ip link add "$tag${side}g" type veth peer name "$tag${side}c"
  ip link set "$tag${side}g" netns "$g"; ip link set "$tag${side}c" netns "$c"
  ip -n "$g" link set "$tag${side}g" address 52:54:00:c0:10:02 name eth0
  ip -n "$c" link set "$tag${side}c" address 52:54:00:c0:10:01 name eth0
  ip -n "$g" addr add 10.77.0.2/24 dev eth0; ip -n "$c" addr add 10.77.0.1/24 dev eth0
  for ns in "$g" "$c"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
  # Twins answer identically, so neither needs ARP mid-capture: pin the neighbours.
  ip -n "$g" neigh add 10.77.0.1 lladdr 52:54:00:c0:10:01 dev eth0 nud permanent
  ip -n "$c" neigh add 10.77.0.2 lladdr 52:54:00:c0:10:02 dev eth0 nud permanent
  ip netns exec "$g" python3 "$here/fixed-http-server.py" 10.77.0.2 8080 "$work/content.bin" &
  pids+=($!)
done

name_of() { [ "$1" = p ] && echo primary || echo secondary; }
sleep 1
for side in p s; do
  g="$tag-$side-guest"; c="$tag-$side-client"
  ip netns exec "$g" dumpcap -q -i eth0 -w "$work/$(name_of $side).pcapng" 2>/dev/null &
  cap=$!
  sleep 1
  ip netns exec "$c" curl -sS --local-port 40000 -o "$work/got-$side.bin" http://10.77.0.2:8080/content.bin
  cmp "$work/got-$side.bin" "$work/content.bin"
  sleep 1
  kill -INT "$cap"; wait "$cap" || true
  cp "$work/$(name_of $side).pcapng" "$out/"
done
echo "recorded $out/primary.pcapng and $out/secondary.pcapng"
