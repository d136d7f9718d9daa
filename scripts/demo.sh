#!/usr/bin/env bash
# The main job, end to end (the README's first command): from labelled images to
# `ORDER BY hamming(code, ics_encode($1)) LIMIT 10`, with nothing faked.
#
#   1. data     compose the multi-label canvas benchmark (Fashion-MNIST + MNIST, 20 classes)
#   2. train    import EfficientNet-Lite0, extract features, train ICS and the CSQ baseline at
#               64 bits, evaluate both, export the ICS model to ONNX
#   3. serve    a private PostgreSQL 15 cluster, CREATE EXTENSION ics_hash, ics_model_load
#   4. index    INSERT ... SELECT ics_encode_batch(...) of the database images, CREATE INDEX mih
#   5. query    k-NN and radius queries for a few query images, a contact sheet PNG
#   6. check    mAP@1000 through SQL (every query, through the index) = the trainer's own
#   7. leave the cluster running
#
# Usage: scripts/demo.sh [--full | --small]
#   default: 5,000 train / 500 query / 5,000 database canvases (about 2 minutes once built)
#   --full:  the benchmark size, 10,000 / 2,000 / 20,000
#   --small: 200 / 50 / 200 small canvases, what `make test` runs as its end-to-end test
# A second run reuses the data, features, models and database and finishes in seconds
# (ICS_DEMO_FRESH=1 rebuilds the database).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

SIZE=demo
case "${1:-}" in
    --full) SIZE=full ;;
    --small) SIZE=small ;;
    "") ;;
    *) die "unknown option $1 (scripts/demo.sh [--full | --small])" ;;
esac
PORT=${ICS_DEMO_PORT:-28816}
CLUSTER=${ICS_DEMO_CLUSTER:-demo}
BITS=64
# The server reads the images itself (pg_read_binary_file), so the work folder must be
# readable by its OS user: it lives beside the clusters, not in the repository.
WORK=$ICS_RUN_DIR/demo-work/$SIZE
OUT=$(pwd)/out/demo
started=$(date +%s)
mkdir -p "$OUT"
install -d -m 0755 "$ICS_RUN_DIR" "$ICS_RUN_DIR/demo-work" "$WORK"
elapsed() { echo "$(($(date +%s) - $1)) s"; }

step "build the trainer and the extension (release; minutes the first time)"
cargo build --release --quiet -p ics-train
T=$(pwd)/target/release/ics-train
install_extension
ok "ics-train and ics_hash built"

step "1. data: compose the $SIZE multi-label benchmark"
if [ ! -f "$WORK/data/manifest.json" ]; then
    rm -rf "$WORK/data"
    "$T" data compose --size "$SIZE" --out "$WORK/data"
fi
for s in train query database; do info "$s: $(wc -l <"$WORK/data/$s.txt") canvases"; done

step "2. train: EfficientNet-Lite0 features, ICS and CSQ at $BITS bits, evaluation, export"
[ -f "$WORK/lite0-128.onnx" ] || "$T" backbone import --out "$WORK/lite0-128.onnx"
"$T" features --backbone "$WORK/lite0-128.onnx" --data "$WORK/data"
for method in ics csq; do
    model=$WORK/$method$BITS.icsm
    [ -f "$model" ] || "$T" train --backbone "$WORK/lite0-128.onnx" --data "$WORK/data" \
        --method "$method" --bits "$BITS" --out "$model"
done
"$T" eval --model "$WORK/ics$BITS.icsm" --model "$WORK/csq$BITS.icsm" --cosine --codes \
    --out "$WORK/eval"
[ -f "$WORK/ics$BITS.onnx" ] || "$T" export --model "$WORK/ics$BITS.icsm" --out "$WORK/ics$BITS.onnx"
read -r map_ics map_csq map_cos map_random < <(python3 - "$WORK/eval/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = {x["name"]: x["report"]["retrieval"] for x in r["models"]}
ics = next(v for k, v in m.items() if k.startswith("ics"))
csq = next(v for k, v in m.items() if k.startswith("csq"))
print(f'{ics["map_at_r"]:.4f} {csq["map_at_r"]:.4f} {r["cosine_map_at_r"]:.4f} {ics["random_codes_map_at_r"]:.4f}')
PY
)
ok "mAP@1000 on $(wc -l <"$WORK/data/query.txt") queries: ICS $map_ics | CSQ $map_csq | cosine of raw features $map_cos | random codes $map_random"
ok "model: $WORK/ics$BITS.onnx; plots: $WORK/eval/*.png"

step "3. serve: private PostgreSQL 15 on 127.0.0.1:$PORT, CREATE EXTENSION, load the model"
cluster_start "$CLUSTER" "$PORT"
db() { psql_at "$PORT" -d ics_demo "$@"; }
model_sha=$(sha256sum "$WORK/ics$BITS.onnx" | cut -d' ' -f1)
database_rows=$(wc -l <"$WORK/data/database.txt")
# A second run keeps the database when it already holds this model's codes of every image.
reuse=$(db -tA -c "SELECT (SELECT sha256 FROM ics_models WHERE name = 'demo') = '$model_sha'
                          AND (SELECT count(*) FROM images WHERE code IS NOT NULL) = $database_rows
                          AND to_regclass('images_code') IS NOT NULL" 2>/dev/null || true)
if [ "$reuse" = t ] && [ -z "${ICS_DEMO_FRESH:-}" ]; then
    ok "database ics_demo already holds this model's codes: reused"
else
    reuse=f
    psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS ics_demo WITH (FORCE)" -c "CREATE DATABASE ics_demo" >/dev/null
    db -tA <<SQL | sed 's/^/    /'
CREATE EXTENSION ics_hash;
SELECT 'loaded model ' || name || ': ' || bits || ' bits, ' || input_kind || ' input ' || input_size || ' px'
  FROM ics_model_load('demo', pg_read_binary_file('$WORK/ics$BITS.onnx'));
SQL
fi
ok "data directory $ICS_RUN_DIR/$CLUSTER/data"

# Loads the database and query images into tables, encodes and indexes the database images.
index_database() {
# The list files: "images/<split>/<n>.png b_1 ... b_C" -> id, path, label indices.
for s in query database; do
    awk -v root="$WORK/data" '{ l = ""; for (i = 2; i <= NF; i++) if ($i == 1) l = l (l == "" ? "" : ",") (i - 2);
                                printf "%d\t%s/%s\t{%s}\n", NR - 1, root, $1, l }' "$WORK/data/$s.txt" >"$WORK/$s.tsv"
done
awk '{ printf "%d\t%s\n", NR - 1, $0 }' "$WORK/data/classes.txt" >"$WORK/classes.tsv"
chmod a+r "$WORK"/*.tsv
db -q <<SQL
CREATE TABLE classes (idx int PRIMARY KEY, name text);
\copy classes FROM '$WORK/classes.tsv'
CREATE TABLE staging (id int PRIMARY KEY, path text, labels int[], img bytea);
\copy staging (id, path, labels) FROM '$WORK/database.tsv'
CREATE TABLE queries (id int PRIMARY KEY, path text, labels int[], img bytea, code hashcode($BITS));
\copy queries (id, path, labels) FROM '$WORK/query.tsv'
UPDATE staging SET img = pg_read_binary_file(path);
UPDATE queries SET img = pg_read_binary_file(path);
CREATE TABLE images (id int PRIMARY KEY, path text, labels int[], img bytea, code hashcode($BITS));
SQL
rows=$(db -tA -c "SELECT count(*) FROM staging")
t0=$(date +%s%N)
db -q <<'SQL'
-- Batches of 256 images: one ONNX Runtime run each, images decoded in parallel.
INSERT INTO images (id, path, labels, img, code)
SELECT s.id, s.path, s.labels, s.img, e.code
FROM (SELECT ics_encode_batch(array_agg(img ORDER BY id)) AS codes, array_agg(id ORDER BY id) AS ids
        FROM staging GROUP BY id / 256) b,
     unnest(b.ids, b.codes) AS e(id, code)
     JOIN staging s ON s.id = e.id;
SQL
t1=$(date +%s%N)
db -q -c "CREATE INDEX images_code ON images USING mih (code)" -c "ANALYZE images"
t2=$(date +%s%N)
ok "INSERT ... SELECT ics_encode_batch: $rows images in $(((t1 - t0) / 1000000)) ms ($((rows * 1000000000 / (t1 - t0))) images/s)"
ok "CREATE INDEX ... USING mih: $(((t2 - t1) / 1000000)) ms ($((rows * 1000000000 / (t2 - t1 + 1))) rows/s)"
}

step "4. index: INSERT ... SELECT ics_encode_batch(...) of the database images, CREATE INDEX mih"
if [ "$reuse" != t ]; then
    index_database
else
    ok "$database_rows images indexed by the previous run"
fi

step "5. query: the 10 nearest database images of a few query images, and radius queries"
info "the plan of the user's query (the image is encoded once, then the mih index is scanned):"
db -c "EXPLAIN (COSTS OFF) SELECT id FROM images
       ORDER BY hamming(code, ics_encode((SELECT img FROM queries WHERE id = 3))) LIMIT 10" |
    sed -n '3,$p' | sed 's/^/      /'
: >"$WORK/sheet.tsv"
row=0
for qid in 3 11 42; do
    [ "$qid" -lt "$(wc -l <"$WORK/data/query.txt")" ] || continue
    qlabels=$(db -tA -c "SELECT string_agg(name, ', ' ORDER BY idx) FROM classes, queries q WHERE q.id = $qid AND idx = ANY (q.labels)")
    qpath=$(db -tA -c "SELECT path FROM queries WHERE id = $qid")
    info "query $qid: $qlabels"
    # The user's query, with the image as the parameter; \timing gives the client latency.
    db -q -F $'\t' -tA >"$WORK/q$qid.tsv" <<SQL
\set img \`base64 -w0 "$qpath"\`
SELECT id, path, labels, hamming(code, ics_encode(decode(:'img', 'base64'))) AS distance
FROM images ORDER BY hamming(code, ics_encode(decode(:'img', 'base64'))) LIMIT 10;
SQL
    warm=$(db -tA -c "SELECT path FROM queries WHERE id = $qid + 1")
    latency=$(db -q <<SQL | awk '/^Time:/ { t = $2 } END { print t }'
\set img \`base64 -w0 "$qpath"\`
\set warm \`base64 -w0 "$warm"\`
PREPARE knn(bytea) AS SELECT id FROM images ORDER BY hamming(code, ics_encode(\$1)) LIMIT 10;
EXECUTE knn(decode(:'warm', 'base64'));
\timing on
EXECUTE knn(decode(:'img', 'base64'));
SQL
    )
    printf '%s\t%s\t%s\n' "$row" "$qpath" "query $qid | $qlabels" >>"$WORK/sheet.tsv"
    while IFS=$'\t' read -r id path labels distance; do
        names=$(db -tA -c "SELECT string_agg(name, ', ' ORDER BY idx) FROM classes WHERE idx = ANY ('$labels'::int[])")
        printf '      d=%-3s %s\n' "$distance" "$names"
        printf '%s\t%s\t%s\n' "$row" "$path" "d=$distance | $names" >>"$WORK/sheet.tsv"
    done <"$WORK/q$qid.tsv"
    within=$(db -tA -c "SELECT count(*) FROM images WHERE hamming_within(code, (SELECT ics_encode(img) FROM queries WHERE id = $qid), 4)")
    info "  ORDER BY hamming(code, ics_encode(\$1)) LIMIT 10: $latency ms (encoding the image included); within distance 4: $within images"
    row=$((row + 1))
done
"$T" sheet --list "$WORK/sheet.tsv" --out "$OUT/contact-sheet-$SIZE.png" \
    --title "ics_hash demo: query (left), its 10 nearest database images by Hamming distance" >/dev/null 2>&1
ok "contact sheet: $OUT/contact-sheet-$SIZE.png"

step "6. check: mAP@1000 through SQL (every query image, through the index) = the trainer's"
db -q -c "UPDATE queries SET code = c.code FROM (SELECT unnest(array_agg(id ORDER BY id)) AS id,
            unnest(ics_encode_batch(array_agg(img ORDER BY id))) AS code FROM queries GROUP BY id / 256) c
          WHERE c.id = queries.id"
db -q <<SQL
DROP TABLE IF EXISTS trainer_codes;
CREATE TABLE trainer_codes (path text PRIMARY KEY, code hashcode);
\copy trainer_codes FROM '$WORK/eval/codes/ics$BITS-database.tsv'
\copy trainer_codes FROM '$WORK/eval/codes/ics$BITS-query.tsv'
SQL
read -r same total < <(db -tA -F ' ' -c "SELECT count(*) FILTER (WHERE t.code = c.code), count(*)
    FROM (SELECT path, code FROM images UNION ALL SELECT path, code FROM queries) c JOIN trainer_codes t USING (path)")
ok "codes from ics_encode in PostgreSQL equal the trainer's: $same of $total"
map_sql=$(db -tA <<'SQL'
-- AP@R = sum over r <= R of P@r * rel_r / (relevant items in the top R); ties broken by the
-- database index (id), as the trainer's evaluation does; relevant = a shared label.
SET enable_seqscan = off;
WITH ranked AS (
    SELECT q.id AS qid, r.rank, r.rel
    FROM queries q,
         LATERAL (SELECT row_number() OVER (ORDER BY hamming(i.code, q.code), i.id) AS rank,
                         i.labels && q.labels AS rel
                  FROM (SELECT code, id, labels FROM images
                        ORDER BY hamming(code, q.code), id LIMIT 1000) i) r
), ap AS (
    SELECT qid, coalesce(sum(prec) FILTER (WHERE rel) / nullif(count(*) FILTER (WHERE rel), 0), 0) AS ap
    FROM (SELECT qid, rel, (count(*) FILTER (WHERE rel) OVER (PARTITION BY qid ORDER BY rank))::float8 / rank AS prec
          FROM ranked) p
    GROUP BY qid
)
SELECT round(avg(ap)::numeric, 4) FROM ap;
SQL
)
map_sql=$(echo "$map_sql" | tail -1)
ok "mAP@1000 through SQL and the mih index: $map_sql; the trainer's offline evaluation: $map_ics"
if [ "$map_sql" != "$map_ics" ] || [ "$same" != "$total" ]; then
    die "SQL and the trainer disagree (codes $same/$total, mAP $map_sql vs $map_ics)"
fi

step "done in $(elapsed "$started")"
info "The cluster keeps running. Connect:  psql -h 127.0.0.1 -p $PORT -U postgres ics_demo"
info "  e.g. SELECT id, labels FROM images ORDER BY hamming(code, ics_encode((SELECT img FROM queries WHERE id = 7))) LIMIT 10;"
info "Stop it:                             make stop-demo  (remove every cluster: make clean-clusters)"
info "Outputs: $OUT/contact-sheet-$SIZE.png, $WORK/eval (report.json, plots), $WORK/ics$BITS.onnx"
