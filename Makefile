# The two commands of the README: `make run` and `make test`. Each installs what is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed
NODE_STAMP := tests/oidc/node_modules/.package-lock.json

.PHONY: run test lint typecheck bench system-deps venv clean migrations

run: venv
	$(VENV)/bin/furrsight up

test: venv lint typecheck $(NODE_STAMP)
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check furrsight plugins tests bench
	$(VENV)/bin/ruff format --check furrsight plugins tests bench
	$(VENV)/bin/lint-imports  # the layering: contracts in pyproject.toml

typecheck: venv
	$(VENV)/bin/mypy furrsight plugins bench

# Every benchmark, each as `python bench/NAME.py` with its defaults: each prints our figure next
# to a baseline measured in the same run, and the ratio (docs/development.md). bench/scrape.py
# installs the peer it compares against (img2dataset) into its own virtualenv under bench/_work/.
BENCHES := ingest scrape embed knn clusters mine analyse review export auth_bench

bench: venv
	@for name in $(BENCHES); do echo "== bench/$$name.py"; PYTHONPATH=. $(PY) bench/$$name.py || exit 1; done

venv: system-deps $(STAMP)

# A Valkey server where the distribution ships one, else Redis (same protocol); a compiler and
# CMake for llama-cpp-python (PyPI has only its source); python3-venv for the virtualenv; darknet
# for the real photos (a dog, an eagle) that the breed tests use; Tesseract and its English model
# to read collage captions; DejaVu fonts for the captions the collage tests draw; Node.js and npm
# for the real OpenID Connect provider the single sign-on tests run (only when `node`/`npm` are
# missing: a Node.js from elsewhere, e.g. NodeSource's, ships its own npm and conflicts with Debian's);
# Chromium for the review screen's browser tests (Playwright drives it: browser downloads are not needed).
system-deps:
	@missing=""; \
	command -v valkey-server >/dev/null || command -v redis-server >/dev/null || missing="$$missing broker"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	[ -e /usr/share/darknet/data/dog.jpg ] || missing="$$missing darknet"; \
	ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-eng"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || missing="$$missing fonts-dejavu-core"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	node=""; command -v node >/dev/null || node="nodejs"; command -v npm >/dev/null || node="$${node:+$$node }npm"; \
	missing="$$missing$${node:+ $$node}"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  pkgs="cmake g++ python3-venv python3-dev darknet tesseract-ocr tesseract-ocr-eng fonts-dejavu-core chromium $$node"; \
	  if apt-cache show valkey-server >/dev/null 2>&1; then pkgs="$$pkgs valkey-server"; else pkgs="$$pkgs redis-server"; fi; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$pkgs; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# panva's oidc-provider for the single sign-on tests, at the versions package-lock.json pins.
$(NODE_STAMP): tests/oidc/package.json tests/oidc/package-lock.json | system-deps
	cd tests/oidc && npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) build *.egg-info tests/oidc/node_modules

# After changing a tables.py: write the migration of every app whose tables changed.
migrations: venv
	PICCOLO_CONF=furrsight.db.piccolo_conf $(PY) -m furrsight.db.makemigrations
