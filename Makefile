# vdi: hosted virtual desktops with their own hypervisor.
# One plain GNU Makefile. `make` builds everything into build/ (build-san/ with SAN=1),
# `make check` installs what is missing, builds and runs every test, `make demo` shows it.

.DEFAULT_GOAL := all
SAN ?= 0
V ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif
ifeq ($(V),1)
Q :=
else
Q := @
endif

CC ?= cc
PYTEST ?= pytest-3
# Debian packages the project needs to build, test and run: the single list.
DEBIAN_PACKAGES := \
	build-essential pkg-config clang clang-format \
	libinih-dev libjansson-dev libpng-dev zlib1g-dev \
	libcmocka-dev python3 python3-pytest python3-pytest-rerunfailures libseccomp-dev \
	libvncserver-dev libvncclient1 vncsnapshot \
	libsqlite3-dev libldap2-dev slapd ldap-utils libssl-dev openssl libunistring-dev \
	samba samba-ad-dc samba-ad-provision \
	libmicrohttpd-dev libcurl4-openssl-dev \
	qemu-system-x86 qemu-utils e2fsprogs console-setup-linux \
	chromium websockify

# Libraries from pkg-config; --as-needed keeps each binary linked only to what it uses.
PKGS := inih jansson libpng libvncserver sqlite3 ldap lber libmicrohttpd libssl libcrypto libcurl
TEST_PKGS := cmocka libvncclient
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -I. -MMD -MP $(SANFLAGS)
CFLAGS += $(shell pkg-config --cflags $(PKGS) $(TEST_PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS) -Wl,--as-needed
# libunistring (Unicode case folding of account names) has no pkg-config file.
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lunistring -lpthread

BIN := $(BUILD)/bin
obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

# Each component's sources go into one archive; the files holding main() stay out so
# the unit tests can link the modules. Archives are listed users first (the order the
# linker needs: a folder includes only folders after it).
COMPONENTS := broker hostd web auth policy hv display net lib
broker_SRCS := $(filter-out broker/main.c broker/vdictl.c,$(wildcard broker/*.c))
web_SRCS := $(wildcard web/*.c)
auth_SRCS := $(wildcard auth/*.c)
policy_SRCS := $(wildcard policy/*.c)
hostd_SRCS := $(filter-out hostd/main.c,$(wildcard hostd/*.c))
display_SRCS := $(wildcard display/*.c)
hv_SRCS := $(filter-out hv/main.c,$(wildcard hv/*.c hv/dev/*.c))
net_SRCS := $(wildcard net/*.c)
lib_SRCS := $(wildcard lib/*.c)
archive = $(BUILD)/ar/lib$(1).a
ARCHIVES := $(foreach c,$(COMPONENTS),$(call archive,$(c)))
define archive_rule
$(call archive,$(1)): $(call obj,$($(1)_SRCS))
	@mkdir -p $$(dir $$@)
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach c,$(COMPONENTS),$(eval $(call archive_rule,$(c))))

# Programs: main file and the archives it needs. A program appears once its main does.
vdi-hv_MAIN := hv/main.c
vdi-hv_USES := hv display lib
# libseccomp for hv/sandbox.c: vdi-hv is the only program linked with it.
SECCOMP_LIBS := $(shell pkg-config --libs libseccomp 2>/dev/null)
vdi-hv_LIBS := $(SECCOMP_LIBS)
vdi-hostd_MAIN := hostd/main.c
vdi-hostd_USES := hostd web display net lib
vdi-broker_MAIN := broker/main.c
vdi-broker_USES := broker web auth policy display net lib
vdictl_MAIN := broker/vdictl.c
vdictl_USES := broker lib
PROGRAM_NAMES := $(foreach p,vdi-hv vdi-hostd vdi-broker vdictl,$(if $(wildcard $($(p)_MAIN)),$(p)))
PROGRAMS := $(addprefix $(BIN)/,$(PROGRAM_NAMES))
define program_rule
$(BIN)/$(1): $(call obj,$($(1)_MAIN)) $(foreach c,$($(1)_USES),$(call archive,$(c)))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) $$($(1)_LIBS)
endef
$(foreach p,$(PROGRAM_NAMES),$(eval $(call program_rule,$(p))))

# `make certs`: a test CA, the broker's certificate and one for the host dev-host (the
# host_id of conf/hostd.conf) in build/certs (hostd/mkcerts.sh; existing files are kept).
.PHONY: certs
certs:
	$(Q)hostd/mkcerts.sh build/certs dev-host

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/*_test.c))
# Tools the integration tests and benchmarks drive (tests/tools/*.c, one program each,
# on libvncclient): built without sanitizers whatever SAN says, they are not under test.
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
TOOL_LIBS = $(shell pkg-config --libs libvncclient libpng libjpeg 2>/dev/null) -lpthread
$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) $(filter-out $(SANFLAGS),$(CFLAGS)) -MF $@.d -o $@ $< $(TOOL_LIBS)
# authcheck drives auth/ until the broker exists: what it runs is under test, so it is
# linked like a unit test (archives, sanitizers with SAN=1); an explicit rule beats the
# pattern rule above.
$(BUILD)/tests/tools/authcheck: $(BUILD)/tests/tools/authcheck.o $(ARCHIVES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(ARCHIVES) $(LDLIBS)
.SECONDARY: $(BUILD)/tests/tools/authcheck.o

.PHONY: all deps check unit integration format format-check clean guests
all: $(PROGRAMS) $(UNIT_TESTS) $(TOOLS) guests

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests: tests/unit/<module>_test.c, cmocka, linked against every archive (the
# linker only pulls what a test uses, so a test may define fakes of other modules) and
# any support objects listed for it below.
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(ARCHIVES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) \
		$(ARCHIVES) $(LDLIBS) \
		$(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
# The device tests run hv/dev/ on the fake VM of tests/unit/fake_vm.c.
$(BUILD)/tests/unit/virtio_test $(BUILD)/tests/unit/virtio_input_test: $(BUILD)/tests/unit/fake_vm.o
# hv/sandbox.c (vdi-hv's filter, which hv/vm.c narrows for vCPU threads) needs
# libseccomp in any test that pulls it in, as vdi-hv does.
$(UNIT_TESTS): LDLIBS += $(SECCOMP_LIBS)

include tests/guest/guest.mk
include guest/guest-image.mk
include kvmbox/kvmbox.mk
include web/web.mk
include demo/demo.mk
-include tests/fuzz/fuzz.mk
.SECONDARY: $(UNIT_TESTS:=.o)

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

# check runs the dependency step first, then builds (a separate make so pkg-config
# sees freshly installed libraries), then every test with one summary line.
check: deps
	@$(MAKE) --no-print-directory all guest kvmbox web-static SAN=$(SAN)
	@BUILD=$(BUILD) PYTEST=$(PYTEST) SAN=$(SAN) tests/run-checks

unit: all
	@BUILD=$(BUILD) SAN=$(SAN) tests/run-checks unit

integration: all guest kvmbox web-static
	@BUILD=$(BUILD) PYTEST=$(PYTEST) SAN=$(SAN) tests/run-checks integration

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(Q)clang-format -i $(FORMAT_SRCS)
format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format-check: ok"

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -path '$(BUILD)/guest-cache' -prune -o -type f -name '*.d' -print 2>/dev/null)
