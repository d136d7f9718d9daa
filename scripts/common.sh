# Shared by the scripts in this folder (sourced, not run): paths, output helpers, and private
# PostgreSQL clusters that never touch a system cluster (own data directory, own port,
# loopback only, run by an unprivileged user).

# ICS_PG_BIN: another PostgreSQL 15 installation's bin folder (e.g. a private copy that a
# development build is installed into); default the system's.
PG_BIN=${ICS_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BIN/pg_config
ORT_LIBRARY=/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1
# PostgreSQL refuses to run as root: from a root shell, clusters run as this user.
PG_OS_USER=${ICS_PG_OS_USER:-postgres}
# Where private clusters live (one folder per cluster, owned by the cluster's user).
ICS_RUN_DIR=${ICS_RUN_DIR:-/var/tmp/ics_hash}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
ok() { printf '    \033[32mok\033[0m %s\n' "$*"; }
die() {
    printf '\033[31merror:\033[0m %s\n' "$*" >&2
    exit 1
}

# Runs a command as the cluster's OS user (as is, when the shell is not root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# cluster_start NAME PORT [postgresql.conf lines...]: initialise (once) and start a cluster.
# PG_EXTRA_ENV (e.g. "RUST_BACKTRACE=1") goes into the postmaster's environment.
cluster_start() {
    local name=$1 port=$2
    shift 2
    local dir=$ICS_RUN_DIR/$name
    if [ "$(id -u)" = 0 ]; then
        install -d -m 0755 "$ICS_RUN_DIR"
        install -d -m 0700 -o "$PG_OS_USER" "$dir"
    else
        mkdir -p "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
            die "initdb failed: see $dir/initdb.log"
        {
            echo "port = $port"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir'"
            echo "shared_buffers = 256MB"
            echo "max_wal_size = 4GB"
            echo "log_min_messages = warning"
            for line in "$@"; do echo "$line"; done
        } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        # shellcheck disable=SC2086 # PG_EXTRA_ENV is a list of NAME=value words
        as_pg env ${PG_EXTRA_ENV:-} "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
            die "PostgreSQL did not start: see $dir/server.log"
    fi
}

# cluster_stop NAME [MODE]
cluster_stop() {
    local dir=$ICS_RUN_DIR/$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
    fi
}

# cluster_destroy NAME: stop and remove a cluster's folder.
cluster_destroy() {
    cluster_stop "$1" immediate
    rm -rf "${ICS_RUN_DIR:?}/$1"
}

# psql_at PORT [psql args...]: psql to a private cluster as its superuser, stopping on error.
psql_at() {
    local port=$1
    shift
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"
}

# install_extension: build (release) and install ics_hash into PostgreSQL 15 ($PG_CONFIG).
install_extension() {
    local sudo_flag=()
    [ "$(id -u)" = 0 ] || sudo_flag=(--sudo)
    mkdir -p target
    cargo pgrx install -p ics_hash --release --pg-config "$PG_CONFIG" "${sudo_flag[@]}" \
        >target/pgrx-install.log 2>&1 ||
        {
            tail -n 40 target/pgrx-install.log >&2
            die "building ics_hash failed (full log: target/pgrx-install.log)"
        }
}
