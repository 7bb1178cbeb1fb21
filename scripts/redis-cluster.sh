#!/usr/bin/env bash
# Starts or stops a local Redis Cluster of three masters (no replicas, no persistence) for the
# @rewind/redis cluster tests and for trying the store on a cluster.
#
#   scripts/redis-cluster.sh start DIR [PORT...]   # default ports 7101 7102 7103
#   scripts/redis-cluster.sh stop DIR
#
# DIR holds each node's nodes-<port>.conf, log and pid file; `stop` kills the nodes it recorded there
# and removes DIR. The cluster URL to give the store is then redis://127.0.0.1:<first port>.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR [PORT...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2

case "$command" in
  start)
    ports=("$@")
    [ ${#ports[@]} -gt 0 ] || ports=(7101 7102 7103)
    [ ${#ports[@]} -ge 3 ] || { echo "a cluster needs at least 3 masters" >&2; exit 2; }
    command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
    mkdir -p "$dir"
    nodes=()
    for port in "${ports[@]}"; do
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 2000 \
        --save "" --appendonly no --dir "$dir" --daemonize yes \
        --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log"
      nodes+=("127.0.0.1:$port")
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
      done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log"
    for port in "${ports[@]}"; do
      for _ in $(seq 1 200); do
        redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' && break
        sleep 0.05
      done
      redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' ||
        { echo "node $port did not reach cluster_state:ok" >&2; exit 1; }
    done
    echo "redis cluster up: ${nodes[*]}"
    ;;
  stop)
    shopt -s nullglob
    # Read every pid first: a node removes its pid file as it shuts down.
    pids=()
    for pidfile in "$dir"/redis-*.pid; do pids+=("$(cat "$pidfile")"); done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    done
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
