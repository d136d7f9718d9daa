# The two commands of the README, and the steps they share.
.PHONY: demo stop-demo test setup install uninstall bench bench-kernels bench-sql clean-clusters

demo: setup          ## the main job: end to end on a private PostgreSQL cluster
	bash scripts/demo.sh

stop-demo:           ## stop the demo's cluster (its data stays: make demo starts it again)
	bash -c 'source scripts/common.sh && cluster_stop "$${ICS_DEMO_CLUSTER:-demo}"'

test: setup          ## every test: style, unit, SQL regression (what CI runs)
	bash scripts/test.sh

setup:               ## idempotent machine setup (packages, cargo-pgrx, ONNX Runtime)
	bash scripts/setup.sh

# PG_CONFIG=/path/to/pg_config picks the server (PostgreSQL 15, 16 or 18); default the system's 15.
install:             ## build (release) and install the extension into an existing server
	bash scripts/install.sh $(PG_CONFIG)

uninstall:           ## remove the extension's files from that server
	bash scripts/install.sh --uninstall $(PG_CONFIG)

bench: bench-kernels bench-sql

bench-kernels:       ## criterion micro-benchmarks of the Hamming kernels
	cargo bench -p ics-benches --bench hamming

bench-sql: setup install   ## SQL benchmarks: sequential scans vs bit_count(a # b); mih vs sequential scans
	bash benches/sql/seqscan.sh
	bash benches/sql/mih.sh

clean-clusters:      ## stop and remove every private cluster the scripts made (not the demo's cached data)
	bash -c 'source scripts/common.sh && for d in "$$ICS_RUN_DIR"/*/data/PG_VERSION; do [ -f "$$d" ] && cluster_destroy "$$(basename "$$(dirname "$$(dirname "$$d")")")"; done; true'
