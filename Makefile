# Two commands do all the set-up: `make repro` (the pipeline on demo data) and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv repro test lint clean-venv

# torch and torchvision are pinned together in pyproject.toml: an unpinned torchvision
# would pull in another torch.
$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

repro: $(STAMP)
	dvc repro

# Two workers, one per core of the 2-core machines this runs on; the tests of the shared tiny
# run on one of them, which builds it once (tests/conftest.py).
test: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check src stages tests
	$(VENV)/bin/ruff format --check src stages tests

clean-venv:
	rm -rf $(VENV)
