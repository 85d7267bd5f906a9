# vdi: hosted virtual desktops with their own hypervisor.
# One plain GNU Makefile. `make` builds everything into build/ (build-san/ with SAN=1),
# `make check` installs what is missing, builds and runs every test, `make demo` shows it.

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
	libcmocka-dev python3 python3-pytest \
	qemu-system-x86 qemu-utils e2fsprogs

PKGS := inih jansson libpng
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -I. -MMD -MP $(SANFLAGS)
CFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

BIN := $(BUILD)/bin

# Shared helpers (lib/) and each binary's sources; the file holding main() is kept
# out of the module archive so unit tests can link the modules.
LIB_SRCS := $(wildcard lib/*.c)
HV_SRCS := $(filter-out hv/main.c,$(wildcard hv/*.c hv/dev/*.c))

LIB_A := $(BUILD)/lib/libvdi.a
HV_A := $(BUILD)/hv/libhv.a
obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

PROGRAMS := $(BIN)/vdi-hv
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/*_test.c))

.PHONY: all deps check unit integration format format-check clean guests
all: $(PROGRAMS) $(UNIT_TESTS) guests

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(HV_A): $(call obj,$(HV_SRCS))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/vdi-hv: $(call obj,hv/main.c) $(HV_A) $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: tests/unit/<module>_test.c, cmocka, linked against every module archive
# (the linker only pulls what a test uses).
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(HV_A) $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka 2>/dev/null)

include tests/guest/guest.mk
include guest/guest-image.mk
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
	@$(MAKE) --no-print-directory all guest SAN=$(SAN)
	@BUILD=$(BUILD) PYTEST=$(PYTEST) SAN=$(SAN) tests/run-checks

unit: all
	@BUILD=$(BUILD) SAN=$(SAN) tests/run-checks unit

integration: all guest
	@BUILD=$(BUILD) PYTEST=$(PYTEST) SAN=$(SAN) tests/run-checks integration

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(Q)clang-format -i $(FORMAT_SRCS)
format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format-check: ok"

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -path '$(BUILD)/guest-cache' -prune -o -type f -name '*.d' -print 2>/dev/null)
