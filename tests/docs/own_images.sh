#!/usr/bin/env bash
# The "own images" recipe as a test: the blocks marked `doctest: own-images` run as written,
# in order (tests/docs/doctest.py --recipe), on a folder of small images: list files, train,
# export, load the model from the client as a member of ics_hash_admin (not a superuser),
# encode, index, query. Then checks what the recipe promises: every image has a code, the codes
# equal `ics-train encode`'s, the k-NN query uses the index and finds the query image itself
# at distance 0.
#
# The images: a tiny composed benchmark (`ics-train data compose`, offline, 64 px canvases),
# filed into photos/<class>/NNNN.png by each canvas's first label, as a user's folders would be.
#
# Usage: tests/docs/own_images.sh [RECIPE.md]   (default: README.md)
#   ICS_OWN_IMAGES_PORT (default 28838); ICS_DOCS_NO_INSTALL=1 when the extension is installed,
#   ICS_DOCS_NO_BUILD=1 when target/release/ics-train is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

RECIPE=${1:-README.md}
PORT=${ICS_OWN_IMAGES_PORT:-28838}
CLUSTER=${ICS_OWN_IMAGES_CLUSTER:-own-images}
REPO=$(pwd)
WORK=$ICS_RUN_DIR/own-images-work
started=$(date +%s)

step "build ics-train (release)"
[ -n "${ICS_DOCS_NO_BUILD:-}" ] || cargo build --release --quiet -p ics-train
T=$REPO/target/release/ics-train
if [ -z "${ICS_DOCS_NO_INSTALL:-}" ]; then
    install_extension
fi

step "a folder of images: photos/<class>/NNNN.png"
install -d -m 0755 "$ICS_RUN_DIR"
rm -rf "$WORK" && mkdir -p "$WORK"
ICS_DATA_DIR=$REPO/.cache/data "$T" --quiet data compose --size small --canvas 64 \
    --train 240 --query 10 --database 10 --seed 24 --out "$WORK/composed" >/dev/null
# Class folder names without spaces or slashes ("T-shirt/top" -> t-shirt-top).
mapfile -t names < <(tr 'A-Z /' 'a-z--' <"$WORK/composed/classes.txt")
n=0
for split in train query database; do
    while read -r path labels; do
        set -- $labels
        i=0
        for b in "$@"; do [ "$b" = 1 ] && break; i=$((i + 1)); done
        n=$((n + 1))
        mkdir -p "$WORK/photos/${names[$i]}"
        cp "$WORK/composed/$path" "$WORK/photos/${names[$i]}/$(printf '%04d' $n).png"
    done <"$WORK/composed/$split.txt"
done
rm -rf "$WORK/composed"
query_src=$(find "$WORK/photos" -type f | sort | sed -n 7p)
cp "$query_src" "$WORK/query.png"
ok "$n images in $(ls "$WORK/photos" | wc -l) class folders; query.png = ${query_src#"$WORK"/}"

step "a database with the extension, and a role that may load models (not a superuser)"
cluster_destroy "$CLUSTER"
cluster_start "$CLUSTER" "$PORT"
trap 'cluster_destroy "$CLUSTER"' EXIT
psql_at "$PORT" -d postgres -c "CREATE ROLE alice LOGIN" -c "CREATE DATABASE own_images OWNER alice"
psql_at "$PORT" -d own_images -c "CREATE EXTENSION ics_hash" -c "GRANT ics_hash_admin TO alice"
chmod -R a+rX "$WORK"

step "the recipe ($RECIPE), as written"
PATH=$REPO/target/release:$PATH python3 tests/docs/doctest.py --recipe own-images \
    --port "$PORT" --psql "$PG_BIN/psql" --user alice --db own_images --repo "$REPO" \
    --workdir "$WORK" "$RECIPE" | tee "$WORK/recipe.log"
grep -q '^not ok' "$WORK/recipe.log" && die "the recipe failed: see above"

step "what the recipe promises"
db() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U alice -d own_images -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
images=$(wc -l <"$WORK/all.txt")
[ "$images" = "$n" ] || die "all.txt lists $images images, the folder holds $n"
[ "$(db -c "SELECT count(code) FROM my_photos")" = "$n" ] || die "not every image has a code"
ok "every image has a code ($n)"
# The database's codes equal the trainer's for the same exported model.
(cd "$WORK" && "$T" --quiet encode --model my64.onnx --list all.txt) | sort >"$WORK/trainer-codes.tsv"
db -F $'\t' -c "SELECT path, code FROM my_photos ORDER BY path" | sort >"$WORK/sql-codes.tsv"
diff "$WORK/trainer-codes.tsv" "$WORK/sql-codes.tsv" >/dev/null ||
    die "ics_encode's codes differ from ics-train encode's: diff $WORK/trainer-codes.tsv $WORK/sql-codes.tsv"
ok "codes equal ics-train encode's"
img=$(base64 -w0 "$WORK/query.png")
plan=$(db <<SQL
PREPARE nearest(bytea) AS
    SELECT path, code <~> ics_encode(\$1) AS distance FROM my_photos ORDER BY code <~> ics_encode(\$1) LIMIT 5;
EXPLAIN (COSTS OFF) EXECUTE nearest(decode('$img', 'base64'));
SQL
)
grep -q 'Index Scan using my_photos_code_idx' <<<"$plan" || die "the k-NN query does not use the index: $plan"
ok "the k-NN query uses the mih index"
hits=$(db -F ' ' <<SQL
PREPARE nearest(bytea) AS
    SELECT path, code <~> ics_encode(\$1) AS distance FROM my_photos ORDER BY code <~> ics_encode(\$1) LIMIT 5;
EXECUTE nearest(decode('$img', 'base64'));
SQL
)
[ "$(wc -l <<<"$hits")" = 5 ] || die "k-NN returned $(wc -l <<<"$hits") rows, not 5: $hits"
[ "$(head -n 1 <<<"$hits" | cut -d' ' -f2)" = 0 ] || die "the nearest hit is not at distance 0: $hits"
# Ties at distance 0 come in any order, so the query image itself is looked up by radius.
same=$(db -c "SELECT string_agg(path, ' ') FROM my_photos
              WHERE hamming_within(code, ics_encode(decode('$img', 'base64')), 0)")
grep -qF " ${query_src#"$WORK"/} " <<<" $same " || die "the query image is not at distance 0 from itself: $same"
ok "5 hits, the nearest at distance 0; the query image among the codes at distance 0"
ok "own-images recipe passed in $(($(date +%s) - started)) s"
