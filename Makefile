# billing-digest: `make demo` runs the main job on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo run backfill test lint venv bench airflow airflow-cli stop clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip check
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## The main job: embedded PostgreSQL + SMTP sink, seed a day, run the DAG through Airflow.
demo: venv
	$(BIN)/python -m devtools.demo

## One digest day of the demo's data through Airflow, like the demo: make run DAY=2026-11-26
## (the date names the digest day: docs/runs-and-dates.md).
run: venv
	@test -n "$(DAY)" || (echo "usage: make run DAY=YYYY-MM-DD (the digest day)"; exit 2)
	$(BIN)/python -m devtools.demo --day $(DAY)

## Backfill digest days FROM..TO, both included, on the `make airflow` instance:
## make backfill FROM=2026-11-22 TO=2026-11-26 (Airflow's --to-date is the day after TO).
backfill: venv
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD"; exit 2)
	$(BIN)/python -m devtools.airflow_local backfill $(FROM) $(TO)

## Lint (ruff, Airflow AIR rules included) then the whole test suite.
lint: venv
	$(BIN)/ruff check dags plugins devtools tests $(wildcard bench)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmarks (not tests): make bench SCALE=S|M|L
SCALE ?= S
bench: venv
	$(BIN)/python -m bench.run --scale $(SCALE)

## One-click unsubscribe service on http://127.0.0.1:8099 (UNSUBSCRIBE_PORT), on the demo's database:
## the demo's e-mails link to it.
.PHONY: unsubscribe
unsubscribe: venv
	$(BIN)/python -m devtools.unsubscribe_local

## Airflow with the UI on http://localhost:8080, on the demo's embedded defaults.
airflow: venv
	$(BIN)/python -m devtools.airflow_local

## The airflow CLI against that instance: make airflow-cli ARGS='backfill create --dag-id ...'
airflow-cli: venv
	$(BIN)/python -m devtools.airflow_local cli $(ARGS)

## Stop what the demo, make airflow and the benchmarks left running (embedded PostgreSQL servers).
stop:
	test ! -x $(BIN)/python || $(BIN)/python -m devtools.stop

clean: stop
	rm -rf .demo .pytest_cache .ruff_cache
