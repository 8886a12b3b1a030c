# pacsindex — a newcomer runs `make demo` or `make test` on a fresh machine; both set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := demo-data

.PHONY: install system test-tools demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system:
	bash scripts/system-packages.sh

# Test-only tools from npm (the OHIF Viewer build, axe-core) in .test-tools/
test-tools:
	bash scripts/test-tools.sh

# The demo ends by serving the sample index: a demo admin gets a fresh generated password, printed once.
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8080
DEMO_DB := $(DEMO_DIR)/pacsindex.db

demo: install
	@mkdir -p $(DEMO_DIR)
	@test -d $(DEMO_DIR)/archive || $(BIN)/pacsindex sample $(DEMO_DIR)/archive --patients 30 --files 3000
	$(BIN)/pacsindex index $(DEMO_DIR)/archive --db $(DEMO_DB)
	$(BIN)/pacsindex search "müller" --db $(DEMO_DB)
	@echo ""
	@$(BIN)/pacsindex user add demo --admin --generate --db $(DEMO_DB) 2>/dev/null \
	  || $(BIN)/pacsindex user passwd demo --generate --db $(DEMO_DB)
	@echo "pacsindex demo: open http://$(DEMO_HOST):$(DEMO_PORT)/ and sign in as 'demo' with the password above."
	@echo "pacsindex demo: the API description is at http://$(DEMO_HOST):$(DEMO_PORT)/docs; Ctrl-C stops the server."
	PACSINDEX_ROOTS="$(abspath $(DEMO_DIR)/archive)" \
	  $(BIN)/pacsindex serve --db $(DEMO_DB) --host $(DEMO_HOST) --port $(DEMO_PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install system test-tools lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Every benchmark, figures as ratios against a baseline in the same run (docs/benchmarks.md); JSON in
# bench/out/, plots in docs/img/. Trees are cached in ~/.cache/pacsindex-bench/. All of it takes 15-25 min on
# 2 cores (the 1M tree most); a quick run: make bench BENCH_SIZES=10000,100000 BENCH_SMB_FILES=2000
BENCH_SIZES ?= 10000,100000,1000000
BENCH_INDEX_FILES ?= 4000
BENCH_STATUS_FILES ?= 100000
BENCH_SHARE_FILES ?= 300
BENCH_SMB_FILES ?= 10000
BENCH_LOAD_SECONDS ?= 600
BENCH_RENDER_FILES ?= 30
# issue 15: small runs (1 file, a CD, BENCH_INDEX_FILES), quick re-scans (SMB trees at 1 ms each way;
# the issue's figure is BENCH_RESCAN_SMB_FILES=1000000: ~18 min of first index over SMB at 0 ms, 4.7 GB tree)
BENCH_RESCAN_LOCAL_FILES ?= 100000
BENCH_RESCAN_SMB_FILES ?= 100000
# the survey of a first index (15.3): each of two tree shapes (bench_scale's; CT-like, BENCH_SURVEY_SERIES
# series of ~200 files) of BENCH_SURVEY_FILES files over SMB at 1 ms each way
BENCH_SURVEY_FILES ?= 100000
BENCH_SURVEY_SERIES ?= 500

bench: install system
	$(BIN)/python -m bench.bench_index --files $(BENCH_INDEX_FILES) --rounds 3
	$(BIN)/python -m bench.bench_scale --sizes $(BENCH_SIZES)
	$(BIN)/python -m bench.bench_status --files $(BENCH_STATUS_FILES)
	$(BIN)/python -m bench.bench_share --files $(BENCH_SHARE_FILES)
	$(BIN)/python -m bench.bench_smb --files $(BENCH_SMB_FILES)
	$(BIN)/python -m bench.bench_load --seconds $(BENCH_LOAD_SECONDS)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests/fuzz
	$(BIN)/python -m bench.bench_render --files $(BENCH_RENDER_FILES)
	$(BIN)/python -m bench.bench_dicomdir --series 20 --per-series 100 --rounds 3
	$(BIN)/python -m bench.bench_startup --sizes 1,500,$(BENCH_INDEX_FILES) --rounds 3
	$(BIN)/python -m bench.bench_warm --sizes 1,500 --rounds 5
	$(BIN)/python -m bench.bench_rescan --local-files $(BENCH_RESCAN_LOCAL_FILES) --smb-files $(BENCH_RESCAN_SMB_FILES) --first-delay-ms 0
	$(BIN)/python -m bench.bench_survey --trees ct,scale --files $(BENCH_SURVEY_FILES) --ct-series $(BENCH_SURVEY_SERIES)
	$(BIN)/python -m bench.bench_smbfloor --files $(BENCH_SMB_FILES)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .test-tools build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
