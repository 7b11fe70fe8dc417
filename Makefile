# billing-digest: `make demo` runs the main job on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo test lint venv bench airflow airflow-cli stop clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip check
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## The main job: embedded PostgreSQL + SMTP sink, seed a day, run the DAG through Airflow.
demo: venv
	$(BIN)/python -m devtools.demo

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
