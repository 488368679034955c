#!/usr/bin/env bash
# A throwaway PostgreSQL server for MedCard's clinic-mode tests (and for trying clinic mode on
# one machine): Debian's PostgreSQL binaries, a cluster in DIR owned by the `postgres` user,
# listening on 127.0.0.1:PORT only, SCRAM-SHA-256 passwords for TCP logins, TLS with a private
# CA (DIR/ca.crt; plain TCP allowed too).
#
#   scripts/postgres.sh start DIR [PORT]   # initdb on first use, start, write DIR/env
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh status DIR
#
# DIR/env (sourced by scripts/test.sh; read by tests/tests/pg_support) holds:
#   MEDCARD_TEST_PG_ADMIN_URL            postgresql://postgres@127.0.0.1:PORT/postgres (no password)
#   MEDCARD_TEST_PG_ADMIN_PASSWORD_FILE  DIR/admin.password (0600): the superuser's password
# Nothing here prints a password. Not for production: a clinic runs its own server
# (docs/deployment.md).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
port=${3:-55432}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|status DIR [PORT]" >&2
    exit 2
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "postgres.sh: PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/setup.sh (Debian package postgresql)" >&2
    exit 1
fi

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

data="$dir/data"
case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    data="$dir/data"
    if [ ! -f "$data/PG_VERSION" ]; then
        umask 077
        head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$dir/admin.password"
        chmod 0600 "$dir/admin.password"
        mkdir -p "$data"
        if [ "$(id -u)" -eq 0 ]; then
            chown postgres: "$dir" "$data"
            cp "$dir/admin.password" "$dir/pwfile"
            chown postgres: "$dir/pwfile"
        else
            cp "$dir/admin.password" "$dir/pwfile"
        fi
        as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$dir/pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        rm -f "$dir/pwfile"
        # TLS as a clinic runs it: a private CA (DIR/ca.crt, what devices get as --db-ca) and a
        # server certificate for 127.0.0.1. Plain TCP stays allowed for the tests that say
        # --db-tls disable.
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=medcard test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$data/server.key" -out "$dir/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
            -extfile "$dir/san.ext" -out "$data/server.crt" >/dev/null 2>&1
        rm -f "$dir/server.csr" "$dir/san.ext" "$dir/ca.key"
        chmod 0600 "$data/server.key"
        chmod 0644 "$dir/ca.crt"
        if [ "$(id -u)" -eq 0 ]; then chown postgres: "$data/server.key" "$data/server.crt"; fi
        # The database medcard_tls takes encrypted connections only (the tests prove TLS is used).
        { echo "hostnossl medcard_tls all all reject"; cat "$data/pg_hba.conf"; } > "$dir/hba.tmp"
        cat "$dir/hba.tmp" > "$data/pg_hba.conf" && rm -f "$dir/hba.tmp"
        cat >>"$data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
log_min_messages = warning
EOF
    fi
    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null \
            || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$data/postgresql.conf" | tail -n 1)
    cat >"$dir/env" <<EOF
export MEDCARD_TEST_PG_ADMIN_URL=postgresql://postgres@127.0.0.1:$port/postgres
export MEDCARD_TEST_PG_ADMIN_PASSWORD_FILE=$dir/admin.password
export MEDCARD_TEST_PG_DIR=$dir
EOF
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data)"
    ;;
stop)
    if [ -f "$data/PG_VERSION" ]; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
status)
    as_pg "$bin/pg_ctl" -D "$data" status
    ;;
*)
    echo "usage: $0 start|stop|status DIR [PORT]" >&2
    exit 2
    ;;
esac
