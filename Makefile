# Quick start: `make demo` and `make test` on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= runs/demo

.PHONY: demo test lint install clean data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gdflows demo --out $(OUT)
	@echo "report: $(OUT)/REPORT.md"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=15

# Fashion-MNIST (70,000 images) from Debian's package, where load_dataset("fashion_mnist") finds it.
FMNIST_DIR := /usr/share/datasets/fashion-mnist
data:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }; \
	else echo "run as root: sudo apt-get install dataset-fashion-mnist"; exit 1; fi

clean:
	rm -rf $(VENV) runs
