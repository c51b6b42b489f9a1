# ratestream: `make run` starts everything on loopback, `make test` runs
# every test. See README.md.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
MODULES := cmd/ratestream pkg migrations services/ingest services/windower services/scorer services/query simulation tools
PKGS := $(foreach m,$(MODULES),github.com/ratestream/ratestream/$(m)/...)
TEST_TIMEOUT ?= 25m

# Settings the stack passes on to the services (make run WINDOW=2s works
# as well as WINDOW=2s make run).
export WINDOW GRACE SCORING_STRATEGY AUTH_MODE REPLICAS BROKERS

.PHONY: build run run-bg stop status migrate lint test test-short fuzz soak-crash bench bench-ingest bench-auth bench-windower bench-export bench-e2e bench-scorer bench-query \
	posts demo-campaign scoring-docs clean

build: ## build every command into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ \
		github.com/ratestream/ratestream/cmd/ratestream \
		github.com/ratestream/ratestream/services/ingest \
		github.com/ratestream/ratestream/services/windower \
		github.com/ratestream/ratestream/services/scorer \
		github.com/ratestream/ratestream/services/query \
		github.com/ratestream/ratestream/tools/cmd/... \
		github.com/ratestream/ratestream/simulation/cmd/...

run: build ## start PostgreSQL, the broker, migrations and all services; Ctrl-C stops
	$(BIN)/stack run

run-bg: build ## the same in the background
	$(BIN)/stack run-bg

stop: ## stop a stack started with run-bg
	@$(BIN)/stack stop

status: ## show what runs
	@$(BIN)/stack status

migrate: build ## apply the migrations to DATABASE_URL (default: the private cluster)
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/dbmigrate up

GOLANGCI_LINT_VERSION := v2.15.0
LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(LINT):
	@mkdir -p $(BIN)/.lint && GOBIN=$(BIN)/.lint $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && \
	 mv $(BIN)/.lint/golangci-lint $(LINT)

lint: $(LINT) ## golangci-lint over every module, with the rules in .golangci.yml
	@for m in $(MODULES); do (cd $$m && $(LINT) run ./...) || exit 1; done

# Every decoder of outside bytes, as PACKAGE:FUZZ_TARGET (make test runs
# their seed corpora; make fuzz searches each for FUZZTIME).
FUZZ_TARGETS := pkg/jsoncheck:FuzzStrict pkg/rating:FuzzUnmarshal pkg/rating:FuzzValidateUserID \
	pkg/httpserver:FuzzObject pkg/httpserver:FuzzFlatObject pkg/auth:FuzzVerify services/query:FuzzParams
FUZZTIME ?= 30s

fuzz: ## run Go's fuzzer on every decoder of outside bytes, FUZZTIME each (default 30s)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t%%:*} $${t##*:} for $(FUZZTIME)"; \
	  (cd $${t%%:*} && $(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) .); \
	done

test: build lint ## install what is missing, start PostgreSQL, lint and run every test
	@export RATESTREAM_TEST_DATABASE_URL="$$(scripts/postgres.sh start)" && \
	 export RATESTREAM_BIN=$(BIN) && \
	 scripts/need.sh node=nodejs npm=npm kcat=kcat chromium=chromium /usr/share/fonts/truetype/dejavu=fonts-dejavu-core promtool=prometheus && \
	 scripts/k6-types.sh && \
	 $(GO) vet $(PKGS) && \
	 { $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS); rc=$$?; \
	   echo "postgres: the private cluster is still running ($$RATESTREAM_TEST_DATABASE_URL); scripts/postgres.sh stop stops it"; \
	   exit $$rc; }

test-short: build ## the same without the long crash, kill and soak tests
	@export RATESTREAM_TEST_DATABASE_URL="$$(scripts/postgres.sh start)" && \
	 export RATESTREAM_BIN=$(BIN) && \
	 $(GO) test -short -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

RUNS ?= 20
soak-crash: build ## kill the windower and scorer at random RUNS times (default 20); prints how many runs held
	@export RATESTREAM_TEST_DATABASE_URL="$$(scripts/postgres.sh start)" && \
	 export RATESTREAM_BIN=$(BIN) RATESTREAM_SOAK_RUNS=$(RUNS) RATESTREAM_E2E_LOGS=$(CURDIR)/simulation/out/soak-crash-logs && \
	 rm -rf simulation/out/soak-crash-logs && mkdir -p simulation/out && \
	 $(GO) test -count=1 -timeout 0 -v -run TestRandomKillsLoseNothing github.com/ratestream/ratestream/tools/e2e \
	   > simulation/out/soak-crash.log 2>&1; rc=$$?; \
	 grep -E -- '--- (PASS|FAIL): TestRandomKillsLoseNothing/|soak-crash:' simulation/out/soak-crash.log; \
	 echo "full log: simulation/out/soak-crash.log; every run's service logs: simulation/out/soak-crash-logs/"; exit $$rc

bench: build ## every benchmark, one summary table (simulation/out/bench.json)
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall

bench-ingest: build ## ingest vs bare gin under the seed's random_rating load
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only ingest

bench-auth: build ## ingest with AUTH_MODE=jwt (RS256, 10k tokens) vs none
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only auth

bench-windower: build ## windower from a 1M-event topic to zero lag, then ratestream replay of it
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only windower

bench-e2e: build ## the whole pipeline, open-loop at 2k..20k ratings/s: empty, then with 10M ratings stored, then the floor of its parts
	@scripts/need.sh wrk=wrk
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only e2e && \
	 $(BIN)/benchall -only e2e -e2e-preload 10000000 && \
	 $(BIN)/benchall -only floor -e2e-rates 10000

bench-export: build ## ratestream export of 10M ratings rows: time and peak RSS
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only export

bench-scorer: build
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only scorer

bench-query: build ## query pages and posts, then my_score's p99 while wrk hammers the heavy page
	@scripts/need.sh wrk=wrk
	@export DATABASE_URL="$$(scripts/postgres.sh start)" && $(BIN)/benchall -only query

N ?= 1000
posts: build ## create N posts (default 1000) in the running stack's database
	@export DATABASE_URL="$${DATABASE_URL:-$$(scripts/postgres.sh start)}" && $(BIN)/mkposts -n $(N)

demo-campaign: build ## a campaign on post 1 of a running stack, its score watched (make run-bg WINDOW=2s GRACE=1s first)
	@export DATABASE_URL="$${DATABASE_URL:-$$(scripts/postgres.sh start)}" && $(BIN)/mkposts -n 100
	$(BIN)/loadgen campaign -posts 100 -warmup 60s -campaign 20s -after 30s -out simulation/out

scoring-docs: build ## rerun every scenario; refresh the plots in docs/scoring/
	@for f in simulation/scenarios/*.json; do \
		$(BIN)/ratesim -scenario $$f -plot docs/scoring/$$(basename $$f .json).svg || exit 1; \
	done

clean:
	rm -rf $(BIN)
