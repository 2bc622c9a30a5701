# Cantus — every workflow is a target here. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CANTUS := $(VENV)/bin/cantus
# The CPU build of torch lies in /opt/wheels on the team's machines; elsewhere pip finds it on PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PROTOS := $(wildcard protos/cantus/v1/*.proto)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
GENERATED := shared/cantus/v1/.generated

.PHONY: setup system-deps lyric-data protos lint test test-unit test-integration golden grooves demo up down clean \
	images images-lint k8s-validate

setup: $(VENV)/.installed $(GENERATED)

# Debian packages: the system libpython3.11 that Triton's Python backend stub embeds,
# FluidSynth with a General MIDI SoundFont (audio), LilyPond (engraved lead sheets) and a
# CJK font for it (fonts-wqy-microhei: without one, Mandarin lyrics engrave as blanks),
# fortunes (songs-poems) and fortunes-zh (Tang and Song poems): the lyric LMs' training text,
# ffmpeg (stations' HLS encoding; ffprobe in their tests), chromium (the web player's test).
# abcmidi and abcm2ps: their chord-annotated example tunes test the harmony model's styles.
# link-grammar: the grammaticality check of `cantus eval lyrics` (cantus.eval.grammar).
# espeak-ng: the singing voice's phones (cantus.render.vocals; English and Mandarin).
# kcat: the standard Kafka tool, run by `cantus kcat` (and its test) on confluent-kafka's librdkafka.
# mma: its groove library, the source of the committed drum grooves (`make grooves`; a test
# checks the table is what importing it writes).
DEBIAN_PACKAGES := libpython3.11 libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont lilypond \
	fonts-wqy-microhei fortunes fortunes-zh ffmpeg chromium abcmidi abcm2ps link-grammar espeak-ng \
	kcat mma
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	fi

# --no-cache-dir: a wheel cached beside its installed copy doubles the disk the install
# takes (a CI run once stopped on "No space left on device" there); the venv is about 2.6 GB.
$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --no-cache-dir --upgrade pip
	$(PIP) install -q --no-cache-dir $(FIND_LINKS) -e ".[dev]"
	touch $@

# The lyric transformers' training text (and the human lines of `cantus eval lyrics`), from the
# registries (docs/lyrics_data.md): Debian's KJV Bible and its reader, GCIDE (1913 Webster
# quotations), WordNet (example sentences); the npm tarball of chinese-poetry,
# pinned and checked against its published sha512. Not needed by `make test`.
LYRIC_DATA_PACKAGES := bible-kjv bible-kjv-text dict-gcide wordnet-base
LYRIC_DATA := .cache/lyric-data
CHINESE_POETRY := chinese-poetry-2.0.1.tgz
CHINESE_POETRY_SHA512 := KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg==
lyric-data: setup $(LYRIC_DATA)/$(CHINESE_POETRY)
	@missing=$$(for p in $(LYRIC_DATA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	fi
$(LYRIC_DATA)/$(CHINESE_POETRY):
	mkdir -p $(LYRIC_DATA)
	cd $(LYRIC_DATA) && npm pack --silent chinese-poetry@2.0.1 >/dev/null
	test "$$(openssl dgst -sha512 -binary $@ | base64 -w0)" = "$(CHINESE_POETRY_SHA512)"

# Generated gRPC/protobuf code goes to one place, shared/cantus/v1/; never edit it by hand.
protos: $(GENERATED)
$(GENERATED): $(PROTOS) $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -I protos --python_out=shared --pyi_out=shared \
	  --grpc_python_out=shared $(PROTOS)
	touch $@

lint: setup
	$(VENV)/bin/ruff check shared services tests
	$(VENV)/bin/ruff format --check shared services tests
	$(VENV)/bin/mypy shared/cantus services

test-unit: setup
	$(VENV)/bin/pytest -m "not integration" -q

test-integration: setup
	$(VENV)/bin/pytest -m integration -q

# MMA's drum grooves as data (cantus.render.grooves): needs Debian's mma (apt-get install mma);
# rewrites shared/cantus/render/data/mma_grooves.json, committed so nothing reads MMA at run time.
grooves: setup
	$(PY) -m cantus.render.grooves

# Rewrites tests/data/golden (MIDI and MusicXML outputs) from the current code; review the diff.
GOLDEN_TESTS := tests/music/test_golden_midi.py tests/render/test_golden_files.py
golden: setup
	CANTUS_UPDATE_GOLDEN=1 $(VENV)/bin/pytest -q $(GOLDEN_TESTS)

# Deploy (deploy/docker, deploy/k8s): `make images` needs docker; the other two run offline
# and are part of `make test` (tests/deploy runs the same checks under pytest).
images: setup
	$(PY) -m cantus.deploy.images build --registry $(or $(IMAGE_REGISTRY),cantus) --tag $(or $(IMAGE_TAG),0.1.0)

images-lint: setup
	$(PY) -m cantus.deploy.images lint

k8s-validate: setup
	$(PY) -m cantus.deploy.manifests

# The whole suite: lint, unit tests, then integration tests against the real embedded stack.
test: lint images-lint k8s-validate
	$(VENV)/bin/pytest -q

up: setup
	$(CANTUS) up

down:
	-$(CANTUS) down

demo: setup
	$(CANTUS) up
	$(CANTUS) compose --key C --mode major --tempo 100 --meter 4/4 --bars 16 --style folk \
	  --mood calm --seed 7 --out out || ($(CANTUS) down; exit 1)
	$(CANTUS) down

clean:
	-$(CANTUS) down
	rm -rf .cantus out shared/cantus/v1/*_pb2*.py shared/cantus/v1/*_pb2*.pyi $(GENERATED)
