# vdsm-container: make demo | make check | make bench
#
# Both targets install what they need on a Debian 12 (or EL with dnf) host,
# as root: the runtimes and image tools from the distribution, the Python
# dependencies in a private virtualenv (.venv).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Engine's own classes (tests/engine/java/build): the JDK and the jars they
# compile and run with (../shared/vendor/ovirt-engine/README.md).
ENGINE_DEB := openjdk-17-jdk-headless libcommons-lang-java \
	libcommons-lang3-java libjackson2-annotations-java \
	libjackson2-core-java libjackson2-databind-java libslf4j-java \
	libatinject-jsr330-api-java libgeronimo-validation-1.1-spec-java \
	libhibernate-validator-java libcdi-api-java \
	libgeronimo-jta-1.2-spec-java libgeronimo-ejb-3.2-spec-java \
	libgeronimo-annotation-1.3-spec-java libcommons-codec-java \
	libcommons-collections3-java
# What make demo runs (DEMO_*), then what the tests add (make check).
# runsc (gVisor) is in Debian only: EL9 has no package (gVisor's own repo).
DEMO_DEB_PACKAGES := runc crun conmon umoci skopeo busybox-static \
	iproute2 e2fsprogs util-linux python3 python3-venv \
	golang-github-containers-common
DEB_PACKAGES := $(DEMO_DEB_PACKAGES) runsc dnsmasq-base udhcpc gcc \
	python3-dev libxml2-dev rpm rpmlint cpio openssl docker-registry \
	golang-go autoconf automake make libacl1-dev file appc-spec \
	systemd-container python3-packaging git procps qemu-system-common \
	qemu-utils xz-utils $(ENGINE_DEB)
DEMO_RPM_PACKAGES := runc crun conmon umoci skopeo busybox iproute
RPM_PACKAGES := $(DEMO_RPM_PACKAGES) dnsmasq rpm-build rpmlint
# The commands make demo checks for before it installs DEMO_*_PACKAGES.
DEMO_TOOLS := runc crun conmon umoci skopeo busybox ip mkfs.ext4 $(PYTHON)
# EL9's Python build tools (python3-setuptools 53, python3-wheel 0.36), in
# a venv of Debian's python3: tests/test_rpm.py builds the RPM with them.
EL9_VENV := .venv-el9
EL9_BUILD_TOOLS := setuptools==53.0.0 wheel==0.36.2
DEMO := demo

.PHONY: all deps system-deps demo check check-fresh check-live lint test \
	test-vdsm bench \
	bench-scale rpm wheel clean hostvm-deps check-el9 check-el9-live \
	test-floor test-py39 rkt

all: check

system-deps:
	@missing=""; for t in runc crun conmon umoci skopeo busybox ip dnsmasq \
		udhcpc mkfs.ext4 gcc xml2-config rpmbuild rpmlint cpio openssl \
		docker-registry go autoconf automake file actool systemd-nspawn \
		git ps qemu-storage-daemon qemu-img javac xz $(PYTHON); do \
		command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || \
		missing="$$missing python3-venv"; \
	/usr/bin/python3 -c 'import packaging' >/dev/null 2>&1 || \
		missing="$$missing python3-packaging"; \
	[ -e /usr/share/containers/seccomp.json ] || \
		missing="$$missing seccomp.json"; \
	[ -e /usr/share/java/commons-collections3.jar ] || \
		missing="$$missing engine-jars"; \
	if [ -n "$$missing" ]; then \
		echo "Installing runtimes and tools (missing:$$missing)"; \
		if command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq $(DEB_PACKAGES); \
		elif command -v dnf >/dev/null 2>&1; then \
			dnf install -y -q $(RPM_PACKAGES); \
		else echo "no apt-get or dnf: install$$missing by hand"; exit 1; fi; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# make demo's: the plugin and pyroute2, none of the test tools (the venv
# of make check, .installed, has them all).
$(VENV)/.demo: setup.cfg pyproject.toml | demo-deps
	@if [ -e $(VENV)/.installed ] && [ $(VENV)/.installed -nt setup.cfg ] \
		&& [ $(VENV)/.installed -nt pyproject.toml ]; then \
		touch $@; exit 0; fi; \
	echo "== installing vdsm-container into $(VENV) (once)"; \
	mkdir -p $(DEMO); log=$(DEMO)/install.log; \
	{ $(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install -q --disable-pip-version-check -e .; \
	} >$$log 2>&1 || { tail -20 $$log; \
		echo "make demo: the install failed (above; all in $$log)"; \
		exit 1; }; \
	touch $@

$(EL9_VENV)/.installed: $(VENV)/.installed
	/usr/bin/python3 -m venv --without-pip $(EL9_VENV)
	$(PY) -m pip --python $(EL9_VENV)/bin/python install -q \
		$(EL9_BUILD_TOOLS)
	touch $@

deps: system-deps $(VENV)/.installed $(EL9_VENV)/.installed

# rkt: discontinued in 2020, in no distribution.  An installed rkt is used
# as it is; else contrib/build-rkt builds it from ../shared/vendor/rkt once
# per snapshot (about 1 min) into /var/cache/vdsm-container-rkt, outside
# the tree, and prints its path (stage1-host.aci and stage1-fly.aci beside
# it), or says why it can't.  The tests find it in VDSM_CONTAINER_TEST_RKT.
RKT_FIND := command -v rkt || contrib/build-rkt
rkt: system-deps
	@rkt=$$($(RKT_FIND)) && echo "rkt: $$rkt"

# Quiet: one line when it installs, the log's tail if that fails; apt's
# lists are updated only if the install fails without (README's command
# line has just updated them).  rkt is
# not installed: building it needs Go and autoconf (about 200 MB and 1.5
# min); the demo shows an rkt pod where there is one (make rkt builds it).
.PHONY: demo-deps
demo-deps:
	@missing=""; for t in $(DEMO_TOOLS); do \
		command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || \
		missing="$$missing python3-venv"; \
	[ -e /usr/share/containers/seccomp.json ] || \
		missing="$$missing seccomp.json"; \
	[ -n "$$missing" ] || exit 0; \
	echo "== installing the demo's runtimes and tools (once):$$missing"; \
	mkdir -p $(DEMO); log=$(DEMO)/install.log; \
	if command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		inst="apt-get install -y -qq --no-install-recommends \
			$(DEMO_DEB_PACKAGES)"; \
		{ $$inst || { apt-get update -qq && $$inst; }; } >$$log 2>&1; \
	elif command -v dnf >/dev/null 2>&1; then \
		dnf install -y -q $(DEMO_RPM_PACKAGES) >$$log 2>&1; \
	else echo "no apt-get or dnf: install$$missing by hand"; exit 1; \
	fi || { tail -20 $$log; \
		echo "make demo: the install failed (above; all in $$log)"; \
		exit 1; }

demo: demo-deps $(VENV)/.demo
	@contrib/demo $(DEMO)

lint: deps
	$(PY) -m ruff check vdsm_container tests bench contrib/vdsm \
		contrib/engine-config contrib/ovirt-container

test: deps rkt
	rkt=$$($(RKT_FIND)) && VDSM_CONTAINER_TEST_RKT=$$rkt \
	$(PY) -m pytest -ra tests --ignore=tests/live \
		--ignore=tests/test_vdsm_integration.py

# The plugin's vdsm-facing code (vdsm_container/vdsm/) in-process against
# vdsm's real code: the snapshot in ../shared/vendor/vdsm, set up as on the
# live host (tests/live/setup-host), on Debian's python3 (vdsm's modules
# are on its path there); the stand-ins where Debian lacks a piece.
test-vdsm: system-deps
	bash tests/live/setup-host
	PYTHONPATH=tests/live/standins /usr/bin/python3 -m pytest -ra \
		-p no:cacheprovider tests/test_vdsm_integration.py

# The live host (tests/live): vdsmd as user vdsm, supervdsmd, libvirtd from
# the vdsm snapshot in ../shared/vendor/vdsm, the plugin installed as
# docs/design.rst "Inside vdsm" says; tests over JSON-RPC with vdsm's
# client, run by Debian's python3 (the one vdsmd runs on).  As root.
check-live: system-deps rkt
	rkt=$$($(RKT_FIND)) && VDSM_CONTAINER_TEST_RKT=$$rkt \
		bash tests/live/setup-host
	tests/live/services restart
	/usr/bin/python3 -m pytest -ra -p no:cacheprovider tests/live; \
		rc=$$?; tests/live/services stop; exit $$rc

# The oldest pyroute2 setup.cfg allows (EPEL 9's 0.5.14), in a venv of its
# own: the network tests on it (before 0.7 its link deletion needs
# host/network.py's fallback on kernels >= 5.19).  On $(PYTHON): 0.5.14
# imports distutils, which Python 3.12 dropped.
PYROUTE2_FLOOR := $(shell sed -n 's/^ *pyroute2>=//p' setup.cfg)
FLOOR_VENV := .venv-floor

$(FLOOR_VENV)/.installed: setup.cfg pyproject.toml
	rm -rf $(FLOOR_VENV)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q "pyroute2==$(PYROUTE2_FLOOR)" \
		pytest
	$(FLOOR_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-floor: deps $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/python -m pytest -ra -p no:cacheprovider \
		tests/test_network.py tests/test_runsc_network.py

# vdsm on EL9 runs Python 3.9: the tests that need no root container
# (conftest's root_container marker) on a Python 3.9 (pyenv's, else
# python3.9 on PATH), with the pyroute2 floor, as on an EL9 host.  Where
# there is none, it says so and skips them.  test_rpm builds with the
# system's python3 (its own subject), not the runner's.
PY39_VENV := .venv-py39
FIND_PY39 := { r=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
	ls -d $$r/versions/3.9*/bin/python 2>/dev/null | sort -V | tail -1; \
	command -v python3.9; } | head -1

test-py39: deps
	@py=$$($(FIND_PY39)); \
	if [ -z "$$py" ]; then \
		echo "test-py39: SKIPPED the Python 3.9 run: no Python 3.9" \
			"found (pyenv root, python3.9 on PATH)"; exit 0; fi; \
	if [ ! -e $(PY39_VENV)/.installed ] || \
		[ setup.cfg -nt $(PY39_VENV)/.installed ]; then \
		rm -rf $(PY39_VENV) && $$py -m venv $(PY39_VENV) && \
		$(PY39_VENV)/bin/python -m pip install -q -e '.[test]' \
			"pyroute2==$(PYROUTE2_FLOOR)" && \
		touch $(PY39_VENV)/.installed || exit 1; fi; \
	echo "test-py39: $$($(PY39_VENV)/bin/python -V)"; \
	$(PY39_VENV)/bin/python -m pytest -ra -p no:cacheprovider \
		-m "not root_container" tests --ignore=tests/live \
		--ignore=tests/test_vdsm_integration.py \
		--ignore=tests/test_rpm.py

check: lint test test-floor test-py39 test-vdsm

# The README's two commands (its `... && make demo` and `... && make check`
# lines) each in a fresh Debian 12 root: debootstrap's minbase (cached),
# this machine's registry settings and nothing else, the checkout copied
# in; a missing install step fails here instead of on a newcomer's box.
# As root; CI runs it.
check-fresh:
	tests/freshroot/run demo
	tests/freshroot/run check

# The tests that touch the host, in the host shape oVirt runs on (EL9:
# systemd as PID 1, cgroup v2): a Debian 12 VM built and booted by
# tests/hostvm/run (qemu TCG on these machines; ~15 min, see
# docs/testing.rst).
# Soak and stress tests keep their full size on the host run (make check):
# 20 create/destroy cycles instead of 500, 10 parallel creates instead of 20.
HOSTVM_DEB := mmdebstrap qemu-system-x86 e2fsprogs
# Every test file that runs a container, or makes cgroups, mounts, netns
# or loop devices, is here.  Not here, on purpose: the image tests
# (test_images, test_image_limits, test_hostile_images) unpack archives
# with umoci into a directory and touch no cgroup, unit or mount, which
# systemd and cgroup v2 do not change; the rest need no root (parsers,
# Engine's side, the README, vdsm's stats arithmetic).
HOSTVM_TESTS := tests/test_cgroups.py tests/test_container.py \
	tests/test_limits.py tests/test_failures.py tests/test_network.py \
	tests/test_runsc_network.py \
	tests/test_volumes.py tests/test_rkt.py tests/test_rkt_real.py \
	tests/test_cli.py \
	tests/test_supervdsm.py tests/test_verbs.py tests/test_security.py \
	tests/test_hostvm.py tests/test_hostsysctl.py tests/test_resources.py \
	tests/test_orphans.py tests/test_clientif.py tests/test_disk_paths.py \
	tests/test_hostile_rootfs.py tests/test_sampling_cost.py \
	tests/test_console.py tests/test_vmpolicy.py tests/test_runonce.py \
	tests/test_qcow2.py
# The console, volume and security tests exercise what the runtime does
# inside the container, which systemd and cgroup v2 do not change: in the
# VM they run under crun only (the one runtime this host cannot run); the
# host's run covers runc and runsc.  The tests of cgroups, limits, stats
# and failures keep every runtime here.  (This saves ~7 of the VM's
# minutes: 28 variants, ~75 s on the host, TCG ~6x slower.)  runsc's
# created-never-started look reads its state file, the same under
# systemd: the host covers it (runsc-Up).  So does the real rkt's image
# trust (signed, unsigned) and its probe: no systemd in them, ~2 VM minutes.
HOSTVM_HOST_COVERED := not ((test_console.py or test_volumes.py or \
	test_security.py) and (runc or runsc)) and not runsc-Up and \
	not (test_rkt_real.py and (signed or probe_finds))
HOSTVM_PYTEST := env VDSM_CONTAINER_TEST_CYCLES=20 \
	VDSM_CONTAINER_TEST_PARALLEL=10 python -m pytest --color=no \
	-p no:cacheprovider -ra --durations=10 \
	-k "$(HOSTVM_HOST_COVERED)" $(HOSTVM_TESTS)

hostvm-deps:
	@missing=""; for t in mmdebstrap qemu-system-x86_64 mkfs.ext4; do \
		command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing the VM tools (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq $(HOSTVM_DEB); \
	fi

# The VM has no network and no Go: it gets the rkt built here
# (contrib/build-rkt), shared read-only (tests/hostvm/run, HOSTVM_RKT).
# Engine's classes, built here, go in read-only too: the tests that edit
# Engine's XML (test_resources' bounds) take it from its builder.
check-el9: deps hostvm-deps
	rkt=$$(contrib/build-rkt) && HOSTVM_RKT=$$rkt \
	HOSTVM_ENGINE=$$(tests/engine/java/build) \
	HOSTVM_PIP="$(CURDIR)/$(PY) -m pip" tests/hostvm/run -- $(HOSTVM_PYTEST)

# The live-vdsmd suite (check-live) in the same VM, as root there: vdsm's
# own units under systemd (tests/live/vdsmunits.py), the plugin's drop-in
# applied by systemd, runc's systemd driver, cgroup v2.  The checkout is
# read-only in the VM: nothing may write into it (no bytecode, no pytest
# cache).  LIVE_WAIT: the bound of every wait for a state change (s),
# larger than on the host for qemu TCG (~6x slower).
# The qcow2 chains on the host's LOCALFS domain run on the host (make
# check-live); in the VM they run on its NFS domain, and on LOCALFS only
# what systemd changes: the daemon's own scope across a supervdsmd
# restart, and the release when a container ends.  Not yet their block
# variant (test_storage_qcow2_block.py): after test_storage_block.py in
# the same run, its block_dc fixture errored in all four tests (round 11;
# run alone it had passed).
HOSTVM_LIVE_HOST_COVERED := not (test_storage_qcow2.py and (snapshot or \
	thin_vm or stateless or legacy or read_only)) and \
	not test_storage_qcow2_block.py
HOSTVM_LIVE := env LIVE_WAIT=300 PYTHONDONTWRITEBYTECODE=1 sh -c \
	'bash tests/live/setup-host && tests/live/services restart && \
	/usr/bin/python3 -m pytest --color=no -ra -p no:cacheprovider \
	--durations=10 -k "$(HOSTVM_LIVE_HOST_COVERED)" tests/live; \
	rc=$$?; tests/live/services stop; exit $$rc'

check-el9-live: deps hostvm-deps
	rkt=$$(contrib/build-rkt) && HOSTVM_RKT=$$rkt \
	HOSTVM_ENGINE=$$(tests/engine/java/build) \
	HOSTVM_PIP="$(CURDIR)/$(PY) -m pip" tests/hostvm/run -- $(HOSTVM_LIVE)

bench: deps
	$(PY) bench/bench.py --report bench/report.md

# N = 100, 500, 1000 containers through the live vdsmd of tests/live (as
# root; about 8 minutes on 2 idle cores), into bench/report.md's scale
# section.
# Not part of `make check` or CI's default run.
SCALE_COUNTS ?= 100,500,1000
bench-scale: system-deps
	bash tests/live/setup-host
	tests/live/services restart
	/usr/bin/python3 bench/scale.py --no-setup --counts $(SCALE_COUNTS) \
		--report bench/report.md; rc=$$?; tests/live/services stop; \
		exit $$rc

wheel: deps
	$(PY) -m pip wheel --no-deps -w dist .

# On EL9 (dnf install rpm-build pyproject-rpm-macros python3-devel
# systemd-rpm-macros): the source tarball and rpmbuild -ta.  On Debian,
# tests/test_rpm.py builds it with EL9's macros defined.
VERSION = $$($(PYTHON) -c 'import vdsm_container as v; print(v.__version__)')
rpm:
	command -v rpmbuild >/dev/null || { echo "rpmbuild not found"; exit 1; }
	mkdir -p dist
	git archive --prefix=vdsm-container-$(VERSION)/ \
		-o dist/vdsm-container-$(VERSION).tar.gz HEAD
	rpmbuild -ta dist/vdsm-container-$(VERSION).tar.gz

clean:
	rm -rf $(VENV) $(EL9_VENV) $(FLOOR_VENV) $(PY39_VENV) $(DEMO) dist \
		build *.egg-info
