#!/usr/bin/env bash
# Build ics_hash (release) and install it into the PostgreSQL server one already runs, or
# remove it again: what `make install` and `make uninstall` run. Needs none of the demo's
# packages or data.
#
#   scripts/install.sh [PG_CONFIG]              build and install (default: PostgreSQL 15's)
#   scripts/install.sh --uninstall [PG_CONFIG]  remove what install put there
#
# Installs: the library into `pg_config --pkglibdir`; ics_hash.control, the install script
# of this version, the kept install scripts of earlier versions and the upgrade scripts into
# `pg_config --sharedir`/extension; ONNX Runtime's library (once per machine, shared by every
# major) at /usr/local/lib/ics_hash/onnxruntime-<version>/, where the extension looks first.
# Writing into the server's folders needs root: as another user it asks sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

uninstall=0
if [ "${1:-}" = --uninstall ]; then
    uninstall=1
    shift
fi
[ -z "${1:-}" ] || PG_CONFIG=$1
[ -x "$PG_CONFIG" ] || die "no pg_config at '$PG_CONFIG' (pass PG_CONFIG=/path/to/pg_config)"
major=$("$PG_CONFIG" --version | sed -nE 's/^PostgreSQL ([0-9]+).*/\1/p')
pkglib=$("$PG_CONFIG" --pkglibdir)
ext=$("$PG_CONFIG" --sharedir)/extension

if [ $uninstall = 1 ]; then
    step "remove ics_hash from PostgreSQL $major ($PG_CONFIG)"
    as_root rm -f "$pkglib/ics_hash.so" "$ext/ics_hash.control" "$ext"/ics_hash--*.sql
    ok "removed $pkglib/ics_hash.so and $ext/ics_hash{.control,--*.sql}"
    info "ONNX Runtime stays at $(dirname "$ORT_LIBRARY") (shared by every major; remove it by hand)"
    exit 0
fi

[[ " ${PG_MAJORS[*]} " == *" $major "* ]] ||
    die "PostgreSQL $major is not supported (supported: ${PG_MAJORS[*]})"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 (rustup)"
[ -n "$(find /usr/lib /usr/lib64 /usr/local/lib -name 'libclang*.so*' 2>/dev/null | head -n 1)" ] ||
    die "libclang not found: pgrx generates PostgreSQL's bindings with it (Debian: apt install clang libclang-dev)"
[ -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ] ||
    die "no server headers in $("$PG_CONFIG" --includedir-server) (Debian: apt install postgresql-server-dev-$major)"

step "cargo-pgrx $PGRX_VERSION"
ensure_cargo_pgrx
pgrx_manage "$major" "$PG_CONFIG"
ok "pgrx manages pg$major through $PG_CONFIG"

step "ONNX Runtime $ORT_VERSION"
install_onnxruntime
ok "$ORT_LIBRARY"

step "build (release) and install into PostgreSQL $major"
info "the first build for a major takes minutes (PostgreSQL's bindings, then the crates)"
install_extension
ok "library:   $pkglib/ics_hash.so"
ok "extension: $ext/ics_hash.control, $(cd "$ext" && ls ics_hash--*.sql | tr '\n' ' ')"
info "then, as a superuser, in each database: CREATE EXTENSION ics_hash;"
