#!/usr/bin/env bash
# GPU check (not part of `make test`; nothing here is verified without an NVIDIA GPU): on a
# machine with an NVIDIA GPU, CUDA 13 and cuDNN 9 from pip, measures and checks
#
#   1. raw ONNX Runtime: the EfficientNet-Lite0 encoder model (trainer/examples/encoder_bench.rs)
#      with the CUDA execution provider, then the CPU one, same images: images/s of the network
#      alone and with decoding, and the codes of both;
#   2. SQL (when PostgreSQL 15 with ics_hash installed is here): a private cluster encodes the
#      same images with ics_encode_batch under ics_hash.execution_provider = cuda and cpu:
#      images/s in the database against raw ONNX Runtime with and without decoding, the CUDA
#      slot held, ics_encoder_info();
#   3. the trainer (trainer/examples/gpu_check.rs, built with `--features cuda`): the
#      finite-difference gradient check on the GPU; fine-tuning images/s for top:2 and all, CPU
#      (2 threads, as on CI) vs CUDA, with the targets as ratios (all >= 20x, top:2 >= 10x);
#      losses of every epoch on both; codes of one model with the backbone on the CPU and on
#      CUDA (identical except bits whose pre-sign value is within 1e-3 of 0, and how many);
#      frozen-head feature extraction (ONNX Runtime's CUDA provider) decoding vs network.
#
# What it needs (the GPU machine may have no network: nothing is downloaded):
#   - python3 with these wheels (CUDA 13, cuDNN 9), installed beforehand or from a wheel folder:
#       pip install onnxruntime-gpu==1.31.1 nvidia-cudnn-cu13 nvidia-cublas nvidia-cuda-runtime \
#           nvidia-curand nvidia-cuda-nvrtc nvidia-cufft
#     onnxruntime-gpu brings libonnxruntime.so (ORT_GPU_LIB below), nvidia-cuda-nvrtc the
#     NVRTC library burn's CUDA backend compiles its kernels with, nvidia-cuda-runtime the
#     headers NVRTC needs (CUDA_PATH is set to the folder holding include/cuda_runtime.h);
#   - the NVIDIA driver (libcuda.so.1, nvidia-smi);
#   - prebuilt binaries, built on any machine (no GPU needed) and carried:
#       cargo build --release -p ics-train --features cuda --example encoder_bench --example gpu_check
#     i.e. target/release/examples/encoder_bench and gpu_check (override: ENCODER_BENCH=,
#     GPU_CHECK=); without them the script builds them, which needs cargo and crates;
#   - the offline data of `make setup` (.cache/data, or ICS_DATA_DIR): the Lite0 weights
#     efficientnet-lite0-57934424.pth and the photos chelsea.png and coffee.png (16 MB);
#   - for part 2 only: PostgreSQL 15 with ics_hash installed (ICS_PG_BIN=path/to/bin).
#
# Usage:
#   [ORT_GPU_LIB=...] tests/gpu/check_cuda.sh [size=224] [images=256] [batch=32]
# Trainer part: TRAIN_SIZE (128), TRAIN_IMAGES (256), TRAIN_EPOCHS (2).
# The CUDA and cuDNN libraries of the pip packages are found through python3, or add their lib
# folders to LD_LIBRARY_PATH yourself. For the server: set
#   ics_hash.onnxruntime_library = '<ORT_GPU_LIB>'   (postgresql.conf, superuser)
# and start the postmaster with those lib folders in LD_LIBRARY_PATH; `auto` then uses CUDA.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-224}
N=${2:-256}
BATCH=${3:-32}
out=$(pwd)/target/gpu-check
mkdir -p "$out"

fail() { printf 'check_cuda: FAILED: %s\n' "$*" >&2; exit 1; }
failures=()
miss() { printf 'check_cuda: MISSED: %s\n' "$*"; failures+=("$*"); }

if [ -z "${ORT_GPU_LIB:-}" ]; then
    ORT_GPU_LIB=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, onnxruntime
print((glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")) or [""])[0])
PY
)
fi
[ -f "${ORT_GPU_LIB:-}" ] || fail "set ORT_GPU_LIB to the libonnxruntime.so of onnxruntime-gpu"
[ -f "$(dirname "$ORT_GPU_LIB")/libonnxruntime_providers_cuda.so" ] ||
    fail "$ORT_GPU_LIB has no libonnxruntime_providers_cuda.so beside it: not the onnxruntime-gpu build"
# CUDA/cuDNN/NVRTC from the nvidia-* pip packages, if present.
nv=$(python3 -c 'import glob,os,nvidia; print(":".join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "**", "lib"), recursive=True)})))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$(dirname "$ORT_GPU_LIB")${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH=$ORT_GPU_LIB
# The CUDA headers NVRTC compiles burn's kernels against (nvidia-cuda-runtime's include/).
if [ -z "${CUDA_PATH:-}" ]; then
    CUDA_PATH=$(python3 -c 'import glob,os,nvidia; h=[f for p in nvidia.__path__ for f in glob.glob(os.path.join(p, "**", "include", "cuda_runtime.h"), recursive=True)]; print(os.path.dirname(os.path.dirname(h[0])) if h else "")' 2>/dev/null || true)
    [ -n "$CUDA_PATH" ] && export CUDA_PATH
fi
echo "CUDA_PATH=${CUDA_PATH:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

bench=${ENCODER_BENCH:-target/release/examples/encoder_bench}
check=${GPU_CHECK:-target/release/examples/gpu_check}
if [ ! -x "$bench" ] || [ ! -x "$check" ]; then
    cargo build --release -q -p ics-train --features cuda --example encoder_bench --example gpu_check
    bench=target/release/examples/encoder_bench
    check=target/release/examples/gpu_check
fi
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

echo "== 1. raw ONNX Runtime, $N images at $SIZE px, batch $BATCH"
gpu=$("$bench" --provider cuda --size "$SIZE" --images "$N" --batch "$BATCH" --threads 4 --out "$out" --codes "$out/cuda.txt" | tail -n 1)
echo "$gpu"
cpu=$("$bench" --provider cpu --size "$SIZE" --images "$N" --batch "$BATCH" --threads "$(nproc)" --out "$out" --codes "$out/cpu.txt" | tail -n 1)
echo "$cpu"
same=$(paste -d' ' "$out/cuda.txt" "$out/cpu.txt" | awk '$1 == $2' | wc -l)
bits=$(paste -d' ' "$out/cuda.txt" "$out/cpu.txt" | python3 -c '
import sys
print(sum(bin(int(a, 16) ^ int(b, 16)).count("1") for a, b in (l.split() for l in sys.stdin)))')
echo "codes: $same of $N identical on CUDA and CPU; $bits differing bits in all"
raw_net=$(field "$gpu" infer_ips)
raw_pipe=$(field "$gpu" pipeline_ips)
echo "img/s batch $BATCH (network only): cuda $raw_net, cpu $(field "$cpu" infer_ips);" \
    "with decoding: cuda $raw_pipe, cpu $(field "$cpu" pipeline_ips)"
[ "$same" -ge $((N * 95 / 100)) ] || fail "fewer than 95% of the codes agree"

pg_bin=${ICS_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -x "$pg_bin/pg_ctl" ] && [ -f "$("$pg_bin/pg_config" --sharedir)/extension/ics_hash.control" ]; then
    echo "== 2. SQL: ics_encode_batch with execution_provider cuda and cpu"
    source scripts/common.sh
    PORT=${ICS_GPU_PORT:-28853}
    chmod -R a+rX "$out" "$(dirname "$ORT_GPU_LIB")"
    cluster_stop gpu-check
    cluster_start gpu-check "$PORT" "ics_hash.onnxruntime_library = '$ORT_GPU_LIB'"
    psql_at "$PORT" -d postgres -c "DROP DATABASE IF EXISTS ics_gpu" -c "CREATE DATABASE ics_gpu"
    psql_at "$PORT" -d ics_gpu <<SQL
CREATE EXTENSION ics_hash;
SELECT name, bits FROM ics_model_load('lite0', pg_read_binary_file('$out/lite0_$SIZE.onnx'));
CREATE TABLE imgs AS SELECT i AS id, pg_read_binary_file(format('%s/images/img_%s.jpg', '$out', lpad(i::text, 3, '0'))) AS img
  FROM generate_series(0, $N - 1) i;
SET ics_hash.batch_size = $BATCH;
SET ics_hash.intra_op_threads = 4;
\timing on
SET ics_hash.execution_provider = cuda;
CREATE TABLE on_cuda AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
CREATE TABLE on_cuda2 AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
SET ics_hash.execution_provider = cpu;
CREATE TABLE on_cpu AS SELECT ics_encode_batch(array_agg(img ORDER BY id), 'lite0') AS codes FROM imgs;
\timing off
-- The CUDA session holds this backend's slot (ics_hash.max_cuda_sessions) until it is dropped.
SELECT slot, pid = pg_backend_pid() AS mine FROM ics_cuda_sessions;
SELECT count(*) FILTER (WHERE a = b) AS identical, sum(hamming(a, b)) AS differing_bits
  FROM unnest((SELECT codes FROM on_cuda), (SELECT codes FROM on_cpu)) u(a, b);
SELECT jsonb_pretty(ics_encoder_info());
SQL
    # ics_encode_batch on CUDA in a warm backend (best of three, decoding on the default
    # ics_hash.decode_threads, pipelined with the runs) against raw inference alone: the target
    # is at least half, decoding included.
    q="SELECT cardinality(ics_encode_batch(array_agg(img ORDER BY id), 'lite0')) FROM imgs"
    ms=$(psql_at "$PORT" -d ics_gpu -c "SET ics_hash.batch_size = $BATCH" -c "SET ics_hash.execution_provider = cuda" \
        -c "$q" -c '\timing on' -c "$q" -c "$q" -c "$q" |
        awk '/^Time:/ { t = $2; if (best == "" || t < best) best = t } END { print best }')
    threads=$(psql_at "$PORT" -d ics_gpu -tA -c "SELECT ics_encoder_info() ->> 'decode_threads'")
    awk -v n="$N" -v ms="$ms" -v raw="$raw_net" -v pipe="$raw_pipe" -v t="$threads" 'BEGIN {
        ips = ms > 0 ? n / (ms / 1000) : 0
        printf "ics_encode_batch on CUDA: %.0f img/s with %s decoding threads, %.0f%% of raw inference (%s img/s; target: 50%%)\n", ips, t, 100 * ips / raw, raw
        printf "  and %.0f%% of raw ONNX Runtime with decoding (encoder_bench pipeline: %s img/s)\n", 100 * ips / pipe, pipe }'
    cluster_stop gpu-check
else
    echo "== 2. SQL part skipped: no PostgreSQL 15 with ics_hash installed here"
fi

echo "== 3. trainer: gradient check, fine-tuning CPU (2 threads) vs CUDA, codes and losses"
"$check" --size "${TRAIN_SIZE:-128}" --images "${TRAIN_IMAGES:-256}" --epochs "${TRAIN_EPOCHS:-2}" \
    --cpu-threads 2 --jpegs "$out/images" | tee "$out/train.txt"
if ! grep -q '^gradcheck .*ok=1' "$out/train.txt" || grep -q '^gradcheck .*ok=0' "$out/train.txt"; then
    miss "the finite-difference gradient check on the GPU"
fi
while read -r line; do
    miss "target: $line"
done < <(grep -E '^(train|codes) .*ok=0' "$out/train.txt" || true)
echo "targets: fine-tuning all on CUDA >= 20x the 2-core CPU, top:2 >= 10x;" \
    "codes CPU vs CUDA identical except bits within 1e-3 of 0"
grep -E '^(train .*ratio|codes|features)' "$out/train.txt"
[ "${#failures[@]}" -eq 0 ] || fail "${#failures[@]} target(s) missed"
echo "check_cuda: ok"
