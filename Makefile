# The two commands (see README.md). The logic lives in bin/.
.PHONY: help demo prodlike test install lint

help:
	@echo "make demo   run Backstop on this machine (SQLite, no services); PORT=8001 to move it"
	@echo "make prodlike   the production-like stack on this machine (PostgreSQL + Redis on loopback; docs/DEPLOY.md)"
	@echo "make test   install from requirements.lock, then ruff, lint-imports and the whole pytest suite (fast tier in parallel, then the slow tier)"
	@echo "make install   only create/update .venv from requirements.lock"

demo:
	bin/demo $(if $(PORT),--port $(PORT))

prodlike:
	bin/prodlike $(if $(PORT),--port $(PORT))

test:
	bin/test $(PYTEST_ARGS)

install:
	bin/bootstrap

lint:
	.venv/bin/ruff check .
