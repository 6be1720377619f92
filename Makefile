# The two commands: `make run` and `make test` (each does all its set-up).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
KAFKA_DATA_DIR ?= .kafka-data
export KAFKA_PORT KAFKA_DATA_DIR

.PHONY: run test lint soak bench profile venv compile chromium kafka-jars kafka-up kafka-down kafka-status worker clean

run: venv compile kafka-jars ## set up, start Kafka if needed, run worker + simulator
	@scripts/run.sh

test: venv compile kafka-jars chromium ## set up, lint, start a throwaway broker, run the whole test suite
	$(VENV)/bin/ruff check .
	@scripts/throwaway_kafka.sh scripts/suite.sh $(PYTEST_ARGS)

lint: venv ## ruff, as `make test` runs it
	$(VENV)/bin/ruff check .

soak: venv compile kafka-jars ## the counting path's model at length, then exactly once through joins, leaves and kills: SOAK_ROUNDS rounds (10) of 200,000 readings; KAFKA_BROKERS=3: SOAK_MINUTES (6) on a cluster, brokers killed too
	HUMIDITY_MODEL_EXAMPLES=$(or $(SOAK_MODEL_EXAMPLES),20000) $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_model.py
	@scripts/throwaway_kafka.sh $(VENV)/bin/python -m tests.soak --rounds $(or $(SOAK_ROUNDS),10) --minutes $(or $(SOAK_MINUTES),6) $(SOAK_ARGS)

bench: venv compile kafka-jars bench/.venv-quix/.installed bench/kstreams/target/humidity-kstreams-1.jar ## throughput, latency and memory, side by side
	@scripts/bench.sh $(BENCH_ARGS)

# the Kafka Streams peer (Java 17, Maven Central)
bench/kstreams/target/humidity-kstreams-1.jar: bench/kstreams/pom.xml $(wildcard bench/kstreams/src/main/java/bench/*.java)
	mvn -q -B -f bench/kstreams/pom.xml clean package -DskipTests

profile: venv compile kafka-jars bench/.venv-quix/.installed ## where one worker's CPU goes (py-spy)
	@scripts/bench.sh --profile $(BENCH_ARGS)

bench/.venv-quix/.installed: bench/requirements.txt
	@test -x bench/.venv-quix/bin/python || $(PYTHON) -m venv bench/.venv-quix
	bench/.venv-quix/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

venv: $(VENV)/.installed ## the service, its tests and lint tools (requirements-dev.txt)
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-build.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep '^uv==' requirements-dev.txt)"
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements-dev.txt
	@touch $@

compile: humidity/core/compiled.json ## the pure core compiled with mypyc (it runs interpreted without)
humidity/core/compiled.json: $(VENV)/.installed scripts/compile_core.py $(filter-out humidity/core/__init__.py,$(wildcard humidity/core/*.py))
	@$(PY) scripts/compile_core.py

chromium: ## Debian's Chromium, for the browser test
	@scripts/ensure_chromium.sh

kafka-jars: kafka/lib/.resolved
kafka/lib/.resolved: kafka/pom.xml
	@command -v mvn >/dev/null || { echo "mvn (Maven) and a JDK 17+ are needed to fetch Kafka's jars" >&2; exit 1; }
	rm -rf kafka/lib
	cd kafka && mvn --batch-mode --quiet dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	@touch $@

kafka-up: venv kafka-jars ## start the local broker (idempotent)
	@scripts/kafka.sh up

kafka-down: ## stop the broker that kafka-up started
	@scripts/kafka.sh down

kafka-status:
	@scripts/kafka.sh status

worker: venv compile ## a worker alone, against HUMIDITY_BROKER
	$(VENV)/bin/faust -A app worker -l info

clean: ## remove local state (stop the broker first)
	rm -rf data .kafka-data test-artifacts build humidity/core/*.so humidity/core/compiled.json humidity_core__mypyc.*.so
