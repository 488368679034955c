#!/usr/bin/env bash
# A throwaway three-node Garage cluster (S3-compatible object store, replication factor 3) on
# loopback, for MedCard's clinic-mode tests and for trying the S3 record store on one machine.
#
#   scripts/garage.sh start DIR [BASE_PORT]   # first use: configure, start 3 nodes, layout,
#                                             #   bucket `medcard`, key `medcard`; write DIR/env
#   scripts/garage.sh stop DIR                # stop every node
#   scripts/garage.sh kill-node DIR N         # stop node N (1..3) abruptly (SIGKILL)
#   scripts/garage.sh start-node DIR N        # start node N again
#
# Node N listens on 127.0.0.1: RPC BASE+10N, S3 API BASE+10N+1, admin API BASE+10N+2
# (BASE default 39000). DIR/env (sourced by tests) holds:
#   MEDCARD_TEST_S3_ENDPOINTS  http://127.0.0.1:<s3 port of node 1>,... (one per node)
#   MEDCARD_TEST_S3_BUCKET     medcard
#   MEDCARD_TEST_S3_KEY_ID     the access key id
#   MEDCARD_TEST_S3_SECRET_FILE DIR/s3.secret (0600): the secret key
# The garage binary: $GARAGE, else `garage` on PATH (scripts/setup.sh installs it with
# `cargo install garage --locked`). Not for production: docs/deployment.md.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|kill-node|start-node DIR [BASE_PORT|N]" >&2
    exit 2
fi
garage=${GARAGE:-$(command -v garage || true)}
if [ -z "$garage" ] && [ -x "$HOME/.cargo/bin/garage" ]; then garage=$HOME/.cargo/bin/garage; fi
if [ -z "$garage" ]; then
    echo "garage.sh: no garage binary: run scripts/setup.sh (cargo install garage --locked) or set GARAGE" >&2
    exit 1
fi

node_conf() { echo "$dir/node$1/garage.toml"; }

start_node() {
    local n=$1
    [ -f "$dir/node$n.pid" ] && kill -0 "$(cat "$dir/node$n.pid")" 2>/dev/null && return 0
    RUST_LOG=warn nohup "$garage" -c "$(node_conf "$n")" server >"$dir/node$n/server.log" 2>&1 &
    echo $! >"$dir/node$n.pid"
}

wait_rpc() {
    local n=$1
    for _ in $(seq 1 100); do
        "$garage" -c "$(node_conf "$n")" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "garage.sh: node $n did not start:" >&2
    tail -n 20 "$dir/node$n/server.log" >&2
    exit 1
}

case "$cmd" in
start)
    base=${3:-39000}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ! -f "$dir/base_port" ]; then
        umask 077
        echo "$base" >"$dir/base_port"
        secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
        for n in 1 2 3; do
            mkdir -p "$dir/node$n/meta" "$dir/node$n/data"
            cat >"$(node_conf "$n")" <<EOF
metadata_dir = "$dir/node$n/meta"
data_dir = "$dir/node$n/data"
db_engine = "lmdb"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:$((base + 10 * n))"
rpc_public_addr = "127.0.0.1:$((base + 10 * n))"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$((base + 10 * n + 1))"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((base + 10 * n + 2))"
EOF
        done
        fresh=1
    else
        fresh=0
    fi
    base=$(cat "$dir/base_port")
    for n in 1 2 3; do start_node "$n"; done
    for n in 1 2 3; do wait_rpc "$n"; done
    if [ "$fresh" = 1 ]; then
        c1=$(node_conf 1)
        for n in 2 3; do
            id=$("$garage" -c "$(node_conf "$n")" node id -q 2>/dev/null | tail -n 1)
            "$garage" -c "$c1" node connect "$id" >/dev/null
        done
        for n in 1 2 3; do
            id=$("$garage" -c "$(node_conf "$n")" node id -q 2>/dev/null | tail -n 1 | cut -d@ -f1)
            "$garage" -c "$c1" layout assign -z "dc$n" -c 1G "${id:0:16}" >/dev/null
        done
        "$garage" -c "$c1" layout apply --version 1 >/dev/null
        "$garage" -c "$c1" bucket create medcard >/dev/null
        out=$("$garage" -c "$c1" key create medcard)
        key_id=$(echo "$out" | sed -n 's/^Key ID: *//p' | head -n 1)
        secret_key=$(echo "$out" | sed -n 's/^Secret key: *//p' | head -n 1)
        if [ -z "$key_id" ] || [ -z "$secret_key" ]; then
            echo "garage.sh: could not read the key from 'garage key create':" >&2
            echo "$out" | sed 's/^Secret key:.*/Secret key: <hidden>/' >&2
            exit 1
        fi
        "$garage" -c "$c1" bucket allow --read --write --owner medcard --key medcard >/dev/null
        umask 077
        printf '%s\n' "$secret_key" >"$dir/s3.secret"
        echo "$key_id" >"$dir/s3.key_id"
    fi
    cat >"$dir/env" <<EOF
export MEDCARD_TEST_S3_ENDPOINTS=http://127.0.0.1:$((base + 11)),http://127.0.0.1:$((base + 21)),http://127.0.0.1:$((base + 31))
export MEDCARD_TEST_S3_BUCKET=medcard
export MEDCARD_TEST_S3_KEY_ID=$(cat "$dir/s3.key_id")
export MEDCARD_TEST_S3_SECRET_FILE=$dir/s3.secret
EOF
    echo "garage.sh: 3 nodes up (S3 on 127.0.0.1:$((base + 11)), :$((base + 21)), :$((base + 31))), bucket medcard"
    ;;
stop)
    for n in 1 2 3; do
        if [ -f "$dir/node$n.pid" ]; then kill "$(cat "$dir/node$n.pid")" 2>/dev/null || true; rm -f "$dir/node$n.pid"; fi
    done
    ;;
kill-node)
    n=${3:?node number}
    if [ -f "$dir/node$n.pid" ]; then kill -9 "$(cat "$dir/node$n.pid")" 2>/dev/null || true; rm -f "$dir/node$n.pid"; fi
    ;;
start-node)
    n=${3:?node number}
    start_node "$n"
    wait_rpc "$n"
    ;;
*)
    echo "usage: $0 start|stop|kill-node|start-node DIR [BASE_PORT|N]" >&2
    exit 2
    ;;
esac
