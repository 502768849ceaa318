# The two commands: `make demo` and `make test`. Both bootstrap themselves
# from a fresh machine with only the Rust toolchain and Python 3.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV            := .venv
VENV_SAM        := .venv-sam
VENV_CHECKOV    := .venv-checkov
PY              := $(VENV)/bin/python
LOCAL           := .local
LOCAL_AWS_PORT  ?= 5000
LOCAL_AWS       := http://127.0.0.1:$(LOCAL_AWS_PORT)
RESOURCE_PREFIX ?= hubspot-warp
INVOKE_PORT     ?= 9000
FUNCTIONS       := webhook-receiver sync-consumer nightly-reconciler review-page

# Every local command talks to the moto server, never to real AWS.
LOCAL_ENV := AWS_ENDPOINT_URL=$(LOCAL_AWS) AWS_ACCESS_KEY_ID=testing \
	AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH

# What the functions need to find the resources of local-up when the port or
# prefix differ from the defaults in their [package.metadata.lambda.env].
FUNCTION_ENV := RESOURCE_PREFIX=$(RESOURCE_PREFIX) \
	WEBHOOK_EVENTS_TABLE=$(RESOURCE_PREFIX)-webhook-events \
	LINKS_TABLE=$(RESOURCE_PREFIX)-links FIELD_STATE_TABLE=$(RESOURCE_PREFIX)-field-state \
	SYNC_LOG_TABLE=$(RESOURCE_PREFIX)-sync-log CONFLICTS_TABLE=$(RESOURCE_PREFIX)-conflicts \
	BREAKERS_TABLE=$(RESOURCE_PREFIX)-breakers \
	RUNS_TABLE=$(RESOURCE_PREFIX)-runs REPORTS_BUCKET=$(RESOURCE_PREFIX)-reports \
	AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$(INVOKE_PORT) \
	SYNC_QUEUE_URL=$(LOCAL_AWS)/123456789012/$(RESOURCE_PREFIX)-sync

.PHONY: help venv venv-sam venv-checkov sam-build sam-validate checkov test lint unit bench demo local-up local-down watch sign-events chromium report-shot \
	release build size rss coldstart clean-local sandboxes reconcile-bench hubwarp model soak props iam-check

help:
	@echo "make demo        run the whole system locally and print a report"
	@echo "make test        fmt, clippy, cfn-lint, sam validate, checkov, every test and the IAM check (bootstraps the venvs)"
	@echo "make iam-check   the AWS calls the tests recorded against the roles in infra/template.yaml"
	@echo "make local-up    start moto on 127.0.0.1:\$$LOCAL_AWS_PORT (default 5000) and create resources"
	@echo "make local-down  stop the moto server local-up started"
	@echo "make sandboxes   WARP (9100) and HubSpot (9101) sandboxes with 300 demo customers, 2% drifted"
	@echo "make watch       cargo lambda watch with the local settings"
	@echo "make hubwarp ARGS=\"...\"  the operator's command against the local stack (ARGS=--help)"
	@echo "make sign-events re-sign events/ fixtures for now into .local/events/"
	@echo "make report-shot the newest report in headless Chromium: screenshot + summary-fits check"
	@echo "make bench       criterion benches (signature + parse + dedup keys)"
	@echo "make reconcile-bench  nightly reconciler over 100,000 pairs and 200,000 other companies, HubSpot at 190/10 s and search at 4/s (CUSTOMERS=5000 for a quick run, ORDER=aligned)"
	@echo "make model CASES=N [SEED=S] [MOTO=1]  N random histories against the reference model, faults at every step (MOTO=1: on moto, over HTTP)"
	@echo "make soak EVENTS=N [SEED=S]  N webhook events through the pipeline with faults, then recovery"
	@echo "make props CASES=N  the parser property tests with N cases each (default 1,000,000)"
	@echo "make sam-build   sam build of infra/template.yaml (x86_64 here; SAM_ARCH=arm64 where that target is installed)"
	@echo "make sam-validate / checkov  the template through sam validate --lint / checkov (offline, no AWS account)"
	@echo "make release     release build of the functions with cargo lambda"
	@echo "make size / rss  release binary sizes / receiver memory after 1000 invocations"
	@echo "make coldstart   init and first invocation of the three functions beside hello-world (RUNS=20)"

venv: $(VENV)/.installed
venv-sam: $(VENV_SAM)/.installed
venv-checkov: $(VENV_CHECKOV)/.installed

$(VENV)/.installed: tests/requirements.txt tests/constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		-r tests/requirements.txt -c tests/constraints.txt
	touch $@

# The SAM CLI and checkov each pin boto3 (and the SAM CLI click) exactly, to
# versions that neither match the project venv's (moto's) nor each other's:
# one venv each, pinned like the project's.
$(VENV_SAM)/.installed: infra/requirements-sam.txt infra/constraints-sam.txt
	python3 -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check \
		-r infra/requirements-sam.txt -c infra/constraints-sam.txt
	touch $@

$(VENV_CHECKOV)/.installed: infra/requirements-checkov.txt infra/constraints-checkov.txt
	python3 -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/pip install --quiet --disable-pip-version-check \
		-r infra/requirements-checkov.txt -c infra/constraints-checkov.txt
	touch $@

lint: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml

# The tally at the end sums every test binary's result line, so the last
# line says what ran (cargo's own last line may be a binary with no tests).
# Every moto server of the tests records the calls it serves under
# $(CALL_LOGS) (tests/src/moto.rs); they are cleared first so the IAM check
# judges this run's calls only.
test: lint sam-validate checkov
	@mkdir -p $(LOCAL)
	rm -rf $(CALL_LOGS)
	set -o pipefail; cargo test --workspace --all-targets 2>&1 | tee $(LOCAL)/test.log
	$(MAKE) --no-print-directory report-shot
	$(PY) -m unittest discover -s tests/tools -t tests/tools
	$(MAKE) --no-print-directory iam-check IAM_EXPECT="$(IAM_CALLERS)"
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "summary: %d passed, %d failed\n", p, f }' $(LOCAL)/test.log

# moto enforces no IAM: the calls the tests made, as moto recorded them,
# against the roles in the template (tests/iam/check_roles.py). Fails on a
# call a role would deny; lists what is granted and never used. The
# checker's own tests first.
# `make test` names every caller (IAM_EXPECT): after the whole suite, one
# that made no call means its calls were recorded without its app name, and
# an empty log would prove nothing.
CALL_LOGS := $(LOCAL)/aws-calls
IAM_CALLERS := webhook-receiver sync-consumer nightly-reconciler review-page hubwarp
iam-check: venv
	$(PY) -m unittest discover -s tests/iam -t tests/iam
	$(PY) tests/iam/check_roles.py infra/template.yaml $(wildcard $(CALL_LOGS)/*.jsonl) \
		$(addprefix --expect ,$(IAM_EXPECT))

# Debian's Chromium, for looking at a report the way a person does.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (headless report checks)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The newest report under .local/reports (or a sample) in headless Chromium
# at 1280x800: a screenshot beside it, and a check that the summary is
# readable without scrolling. REPORT=path for another one.
report-shot: chromium
	cargo build --quiet -p integration-tests --bin report-shot
	./target/debug/report-shot $(REPORT)

bench:
	cargo bench -p hubwarp --bench intake

# The nightly reconciler over $(CUSTOMERS) pairs (1% drifted) against the
# sandboxes in a child process, HubSpot's limit enforced at 190 per 10 s:
# calls against the goal, wall time against the limit's floor, peak RSS.
# Fails when a goal is missed. A 100,000 run takes about ten minutes (two
# nights with store latency, after seeding 300,000 companies). WARP lists
# its customers in an order unlike HubSpot's ids (ORDER=aligned for the same
# order, the kinder case).
CUSTOMERS ?= 100000
ORDER ?= shuffled
reconcile-bench:
	cargo run --release -p integration-tests --bin reconcile-bench -- --customers $(CUSTOMERS) --order $(ORDER)

# --- proof of convergence (docs/testing.md, "Proof of convergence") ----------

# N seeded histories (tests/src/model) in release; history i runs seed S+i
# (S drawn from the clock when not given, and printed). The last line is
# `model: N histories, F failed`; each failure prints its replay command.
# MOTO=1 runs them on DynamoDB, SQS and S3 on moto with the HTTP clients
# against the sandboxes (about a second a history).
model: $(if $(MOTO),venv)
	cargo run --quiet --release -p integration-tests --bin model -- \
		--cases $(or $(CASES),1000) $(if $(SEED),--seed $(SEED)) $(if $(MOTO),--moto)

# The soak: histories of 40-80 customers until EVENTS webhook events went
# through, faults at random, each history recovered and reconciled; last
# line `soak: N events, lost L, doubled D, stale S, dlq Q`.
soak:
	cargo run --quiet --release -p integration-tests --bin model -- \
		--soak $(or $(EVENTS),10000) $(if $(SEED),--seed $(SEED))

# Every parser of outside input under proptest, CASES cases per property.
PROPS := webhook_bodies signature_headers receiver_requests queue_messages \
	mapping_files hubspot_answers warp_answers
props:
	PROPTEST_CASES=$(or $(CASES),1000000) cargo test --release -p integration-tests --test props
	@echo "props: $(words $(PROPS)) properties ($(PROPS)), $(or $(CASES),1000000) cases each"

# --- local AWS ---------------------------------------------------------------

# The calls of the functions while moto runs, for the IAM check at the end
# of the demo (a fresh log for each fresh server).
DEMO_CALL_LOG := $(CALL_LOGS)/demo.jsonl
local-up: venv
	@mkdir -p $(LOCAL)
	@if $(PY) -c "import urllib.request,sys; urllib.request.urlopen('$(LOCAL_AWS)/moto-api/data.json', timeout=1)" 2>/dev/null; then \
		echo "local AWS already answers on $(LOCAL_AWS); reusing it"; \
	else \
		echo "starting moto on $(LOCAL_AWS)"; \
		mkdir -p $(CALL_LOGS); rm -f $(DEMO_CALL_LOG); \
		MOTO_CALL_LOG=$(DEMO_CALL_LOG) nohup $(PY) tests/moto_server.py $(LOCAL_AWS_PORT) > $(LOCAL)/moto.log 2>&1 & \
		echo $$! > $(LOCAL)/moto.pid; \
		for i in $$(seq 1 100); do \
			$(PY) -c "import urllib.request; urllib.request.urlopen('$(LOCAL_AWS)/moto-api/data.json', timeout=1)" 2>/dev/null && break; \
			sleep 0.2; \
		done; \
	fi
	@$(LOCAL_ENV) cargo run --quiet -p integration-tests --bin local-aws -- $(RESOURCE_PREFIX) | tee $(LOCAL)/resources.env

# The servers local-down stops, among those local-up and sandboxes started
# (`make demo` names only the ones it started itself). It waits for each to
# exit, so a next local-up does not find a server on its way out.
LOCAL_SERVERS ?= moto sandboxes

local-down:
	@for p in $(LOCAL_SERVERS); do \
		if [ -f $(LOCAL)/$$p.pid ]; then \
			pid=$$(cat $(LOCAL)/$$p.pid); \
			if kill $$pid 2>/dev/null; then \
				for i in $$(seq 1 50); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
				echo "stopped $$p (pid $$pid)"; \
			fi; \
			rm -f $(LOCAL)/$$p.pid; \
		fi; \
	done

# The WARP sandbox on 127.0.0.1:9100 and the HubSpot sandbox on 9101, seeded
# with 300 linked demo customers, 2% of the pairs drifted apart (test peers,
# never shipped).
DEMO_CUSTOMERS ?= 300
DEMO_DRIFT ?= 0.02
sandboxes:
	@mkdir -p $(LOCAL)
	cargo build --quiet -p integration-tests --bin warp-sandbox
	@if $(PY) -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/', timeout=1)" 2>/dev/null || \
		$(PY) -c "import socket; socket.create_connection(('127.0.0.1', 9100), 1)" 2>/dev/null; then \
		echo "sandboxes already answer on 127.0.0.1:9100"; \
	else \
		nohup ./target/debug/warp-sandbox --port 9100 --customers $(DEMO_CUSTOMERS) --drift $(DEMO_DRIFT) \
			> $(LOCAL)/sandboxes.log 2>&1 & \
		echo $$! > $(LOCAL)/sandboxes.pid; \
		for i in $$(seq 1 50); do grep -q HUBSPOT_API_URL $(LOCAL)/sandboxes.log 2>/dev/null && break; sleep 0.2; done; \
		cat $(LOCAL)/sandboxes.log; \
	fi

# Settings come from [package.metadata.lambda.env] of each function; a
# variable already set in the environment wins.
watch: venv
	$(LOCAL_ENV) $(FUNCTION_ENV) cargo lambda watch --invoke-address 127.0.0.1 --invoke-port $(INVOKE_PORT)

# The operator's command with the local settings: the tables and queue of
# local-up, the sandboxes, cargo lambda watch's invoke endpoint for
# `reconcile` (or `reconcile --local`). Defaults under the environment, as
# for the functions: a variable set in the shell wins.
HUBWARP_DEFAULTS := RECONCILE_CONCURRENCY=8\nWARP_API_URL=http://127.0.0.1:9100\nWARP_API_TOKEN=warp-sandbox-token\nHUBSPOT_API_URL=http://127.0.0.1:9101\nHUBSPOT_ACCESS_TOKEN=pat-sandbox-token\nRECONCILER_FUNCTION_NAME=nightly-reconciler\nRECONCILE_TIMEZONE=America/New_York
ARGS ?= --help

hubwarp:
	@$(LOCAL_ENV) $(FUNCTION_ENV) HUBWARP_LOCAL_DEFAULTS="$$(printf '$(HUBWARP_DEFAULTS)')" \
		cargo run --quiet -p hubwarp --bin hubwarp -- $(ARGS)

sign-events:
	@mkdir -p $(LOCAL)/events
	cargo build --quiet -p integration-tests --bin sign-event
	for v in v1 v3; do ./target/debug/sign-event events/unsigned/function-url.json $(LOCAL)/events/webhook-$$v.json $$v; done
	./target/debug/sign-event events/unsigned/rest-api.json $(LOCAL)/events/webhook-rest-api-v3.json v3

# --- release -----------------------------------------------------------------

# The deployable build: sam build runs `cargo lambda build --release` in each
# function's crate (BuildMethod rust-cargolambda; no longer a beta feature in
# SAM CLI 1.170, so no --beta-features, which would turn on every other beta
# feature too). CARGO_TARGET_DIR is one directory for the three, so they
# share one compilation. cargo lambda is the project venv's;
# it finds zig in that venv too (the ziglang wheel), so nothing is fetched
# but crates. SAM_ARCH=arm64 needs the aarch64-unknown-linux-gnu target
# installed (docs/deploying.md, "Build"); x86_64 is the only one here, so
# it is the default of this target while the template's stays arm64.
SAM_ARCH         ?= x86_64
SAM_TARGET_DIR   ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
SAM_ARTIFACTS    := WebhookReceiverFunction SyncConsumerFunction NightlyReconcilerFunction ReviewPageFunction
SAM_ENV          := SAM_CLI_TELEMETRY=0 PATH=$(CURDIR)/$(VENV)/bin:$$PATH
# With the e-mail on, so the build has ReviewPageFunction (ReportEmailOn)
# whatever the SAM CLI does with conditions; a build is the same binaries
# whatever the deploy's parameters.
SAM_BUILD_EMAIL  := ReportEmailTo=reports@example.com ReportEmailFrom=reports@example.com

sam-build: venv venv-sam
	$(SAM_ENV) CARGO_TARGET_DIR=$(SAM_TARGET_DIR) $(VENV_SAM)/bin/sam build \
		--template-file infra/template.yaml \
		--parameter-overrides Architecture=$(SAM_ARCH) $(SAM_BUILD_EMAIL)
	@missing=0; for fn in $(SAM_ARTIFACTS); do \
		f=.aws-sam/build/$$fn/bootstrap; \
		if [ -f $$f ]; then printf '%-26s %9s bytes %6s  %s\n' $$fn "$$(stat -c %s $$f)" \
			"$$(numfmt --to=iec $$(stat -c %s $$f))" "$$(file -b $$f 2>/dev/null | cut -d, -f1-2)"; \
		else echo "$$fn: $$f missing"; missing=1; fi; \
	done; exit $$missing

build: sam-build

# Both read the template alone: no AWS account, credentials or network.
# The proxy that answers nothing makes any attempt fail at once instead of
# going out (the SAM CLI asks PyPI for a newer version once a week).
OFFLINE := HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= \
	https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 no_proxy=

sam-validate: venv-sam
	$(OFFLINE) SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam validate --lint \
		--template-file infra/template.yaml

# Every finding is fixed or skipped beside its resource (Metadata: checkov:
# skip, with the reason), so any failure is new and fails the target.
checkov: venv-checkov
	$(OFFLINE) $(VENV_CHECKOV)/bin/checkov -f infra/template.yaml --framework cloudformation \
		--compact --quiet --skip-download

# x86_64 here (the only target installed); arm64: docs/deploying.md, "Build".
release: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cargo lambda build --release --compiler cargo \
		$(addprefix --package ,$(FUNCTIONS))

size: release
	@ls -l target/lambda/*/bootstrap

# Cold start of the three functions beside a hello-world lambda_runtime
# binary, release profile, same run: spawn -> first `next`, and the first
# invocation against moto and the sandboxes (RUNS=20 starts each).
RUNS ?= 20
coldstart: venv
	cargo build --quiet --release -p webhook-receiver -p sync-consumer -p nightly-reconciler \
		-p integration-tests --bin webhook-receiver --bin sync-consumer --bin nightly-reconciler \
		--bin hello-lambda --bin coldstart
	RUNS=$(RUNS) ./target/release/coldstart

# Resident memory of the release receiver after N invocations (default 1000).
rss: local-up
	$(LOCAL_ENV) $(FUNCTION_ENV) INVOKE_PORT=$(INVOKE_PORT) \
		cargo run --quiet -p integration-tests --bin rss-probe

# The demo's night e-mails its report (moto's SES keeps it) with review
# links to the review-page function under cargo lambda watch, signed with a
# local-only key (the stack generates the real one in Secrets Manager).
DEMO_EMAIL_ENV := REPORT_EMAIL_TO=finance@hubwarp.example REPORT_EMAIL_FROM=reports@hubwarp.example \
	REVIEW_BASE_URL=http://127.0.0.1:$(INVOKE_PORT)/lambda-url/review-page/review/ \
	REVIEW_LINK_KEY=local-dev-review-link-key-0123456789abcdef
# The customer whose billing e-mail the demo's stories dispute (MANUAL).
DEMO_DISPUTED := ZT-487390107

# The demo stops what it started, however it ends (success, failure, Ctrl-C):
# moto and the sandboxes if they were not running before (a pid file of a
# live process says they were), and cargo lambda watch's process group if
# the demo died without stopping it (.local/watch.pid outlives it then).
demo: venv chromium
	@mkdir -p $(LOCAL); \
	running() { [ -f $(LOCAL)/$$1.pid ] && kill -0 $$(cat $(LOCAL)/$$1.pid) 2>/dev/null; }; \
	before=""; for p in moto sandboxes; do running $$p && before="$$before $$p"; done; \
	stop() { \
		code=$$?; mine=""; \
		for p in moto sandboxes; do case " $$before " in *" $$p "*) ;; *) mine="$$mine $$p";; esac; done; \
		if [ -f $(LOCAL)/watch.pid ]; then \
			kill -TERM -- -$$(cat $(LOCAL)/watch.pid) 2>/dev/null && echo "stopped cargo lambda watch"; \
			rm -f $(LOCAL)/watch.pid; \
		fi; \
		$(MAKE) --no-print-directory local-down LOCAL_SERVERS="$$mine"; \
		exit $$code; \
	}; \
	trap stop EXIT; trap 'exit 130' INT TERM; \
	set -e; \
	$(MAKE) --no-print-directory local-up; \
	$(MAKE) --no-print-directory sandboxes; \
	echo "demo: day one in HubSpot: hubwarp setup on a portal without the bridge's properties"; \
	MAPPING_FILE=$(CURDIR)/lib/mappings/demo.toml $(MAKE) --no-print-directory hubwarp ARGS=setup; \
	echo "demo: hubwarp link --apply (WARP's customers name their companies; HubSpot learns their BANs)"; \
	set -o pipefail; $(MAKE) --no-print-directory hubwarp ARGS="link --apply" | tail -n 1; \
	echo "demo: receiver, consumer and nightly reconciler"; \
	cargo build --quiet -p webhook-receiver -p sync-consumer -p nightly-reconciler -p review-page; \
	$(LOCAL_ENV) $(FUNCTION_ENV) $(DEMO_EMAIL_ENV) INVOKE_PORT=$(INVOKE_PORT) \
		MAPPING_FILE=$(CURDIR)/lib/mappings/demo.toml \
		cargo run --quiet -p integration-tests --bin demo; \
	echo "demo: hubwarp explain $(DEMO_DISPUTED) contact.email (the decision the review link made)"; \
	MAPPING_FILE=$(CURDIR)/lib/mappings/demo.toml $(MAKE) --no-print-directory hubwarp \
		ARGS="explain $(DEMO_DISPUTED) contact.email --limit 3"; \
	echo "demo: hubwarp doctor on the demo stack"; \
	MAPPING_FILE=$(CURDIR)/lib/mappings/demo.toml $(MAKE) --no-print-directory hubwarp ARGS=doctor; \
	if [ -f $(DEMO_CALL_LOG) ]; then \
		echo "demo: its AWS calls against the roles in infra/template.yaml"; \
		$(PY) tests/iam/check_roles.py infra/template.yaml $(DEMO_CALL_LOG); \
	else \
		echo "demo: no $(DEMO_CALL_LOG) (moto was already running), IAM check skipped"; \
	fi

clean-local: local-down
	rm -rf $(LOCAL)
