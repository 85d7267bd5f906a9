# libFuzzer harnesses (tests/fuzz/*_fuzz.c), built with clang into $(BUILD)/fuzz/ from
# the sources each needs (<name>_SRCS) and any libraries (<name>_LIBS). `make fuzz` builds
# them, `make fuzz-smoke` runs each (or those named in FUZZ_ONLY) for FUZZ_SECONDS (default
# 20) from a copy of its seed corpus (tests/fuzz/corpus/<name>/). `make fuzz-replay` needs no clang: it builds each
# harness with $(CC), ASan and UBSan and tests/fuzz/replay.c into $(BUILD)/fuzz-replay/ and
# runs it over its corpus, failing on any crash or broken invariant.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -Wall -Wextra -Werror \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(shell pkg-config --cflags libvncserver 2>/dev/null)
FUZZ_DIR := $(BUILD)/fuzz
vnc_input_fuzz_SRCS := display/vnc_input.c display/keymap.c display/rfbkeys.c lib/log.c
i8042_fuzz_SRCS := hv/dev/i8042.c lib/log.c
virtio_blk_fuzz_SRCS := hv/dev/pci.c hv/dev/virtio_pci.c hv/dev/virtqueue.c hv/dev/virtio_blk.c \
	hv/dev/blk_overlay.c lib/log.c tests/unit/fake_vm.c
websocket_fuzz_SRCS := web/websocket.c lib/log.c
websocket_fuzz_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
rfbfilter_fuzz_SRCS := display/rfbfilter.c display/rfbkeys.c display/keymap.c
rfbkeys_fuzz_SRCS := display/rfbfilter.c display/rfbkeys.c display/keymap.c
vnc_auth_fuzz_SRCS := display/vnc_auth.c
vnc_auth_fuzz_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
route_fuzz_SRCS := web/route.c
hostport_fuzz_SRCS := lib/hostport.c
ticketline_fuzz_SRCS := hostd/ticketline.c
pci_fuzz_SRCS := hv/dev/pci.c lib/log.c tests/unit/fake_vm.c
pool_fuzz_SRCS := broker/pool.c broker/util.c broker/store.c lib/json.c lib/log.c lib/clock.c \
	lib/desktop_life.c lib/metrics.c policy/rules.c
pool_fuzz_LIBS := $(shell pkg-config --libs jansson sqlite3 libcrypto 2>/dev/null || echo -ljansson -lsqlite3 -lcrypto)
# http_fuzz includes web/server.c to reach hand_over(), as the TLS front calls it
http_fuzz_INCLUDED := web/server.c
http_fuzz_SRCS := web/route.c web/static.c web/tls_front.c net/splice.c net/stream.c \
	net/tlsname.c lib/hostport.c lib/log.c lib/json.c lib/clock.c lib/file.c lib/pem.c \
	broker/cert.c
http_fuzz_LIBS := $(shell pkg-config --libs libmicrohttpd jansson openssl 2>/dev/null || \
	echo -lmicrohttpd -ljansson -lssl -lcrypto)
ldapfilter_fuzz_SRCS := auth/ldapfilter.c
control_fuzz_SRCS := hv/control_request.c hv/keys.c display/keymap.c lib/json.c
control_fuzz_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
ldapvalue_fuzz_SRCS := auth/ldapvalue.c auth/ldapfilter.c auth/identity.c
ldapvalue_fuzz_LIBS := -lldap -llber -ljansson
config_fuzz_SRCS := lib/config.c
config_fuzz_LIBS := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
serial_fuzz_SRCS := hv/dev/serial.c lib/log.c
rtc_fuzz_SRCS := hv/dev/rtc.c lib/log.c
virtio_input_fuzz_SRCS := hv/dev/pci.c hv/dev/virtio_pci.c hv/dev/virtqueue.c \
	hv/dev/virtio_input.c lib/log.c tests/unit/fake_vm.c
template_fuzz_SRCS := hostd/template.c hostd/desktop.c lib/desktop_life.c lib/json.c
template_fuzz_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
FUZZERS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/*_fuzz.c))

.PHONY: fuzz fuzz-smoke fuzz-replay
fuzz: $(FUZZERS)

define fuzz_rule
$(FUZZ_DIR)/$(1): tests/fuzz/$(1).c $($(1)_SRCS) $($(1)_INCLUDED)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  FUZZ    $$@")
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $$(filter-out $($(1)_INCLUDED),$$^) $$($(1)_LIBS) -lpthread
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(notdir $(f)))))

fuzz-smoke: $(FUZZERS)
	@set -e; for f in $(if $(FUZZ_ONLY),$(addprefix $(FUZZ_DIR)/,$(FUZZ_ONLY)),$(FUZZERS)); do \
		n=$$(basename $$f); mkdir -p $(FUZZ_DIR)/corpus/$$n; \
		if [ -d tests/fuzz/corpus/$$n ]; then cp -n tests/fuzz/corpus/$$n/* $(FUZZ_DIR)/corpus/$$n/ 2>/dev/null || true; fi; \
		echo "fuzz-smoke: $$n for $(FUZZ_SECONDS) s"; \
		if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(FUZZ_DIR)/corpus/$$n > $(FUZZ_DIR)/$$n.log 2>&1; then \
			tail -n 40 $(FUZZ_DIR)/$$n.log; echo "fuzz-smoke: $$n FAILED"; exit 1; fi; \
		grep -E 'stat::(number_of_executed_units|new_units_added|peak_rss_mb)' $(FUZZ_DIR)/$$n.log; \
		grep -E '^#[0-9]+.*cov:' $(FUZZ_DIR)/$$n.log | tail -n 1; \
	done

# The corpora as regression tests, without libFuzzer: each harness linked with replay.c.
REPLAY_CC ?= $(CC)
REPLAY_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -Wall -Wextra -Werror \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	$(shell pkg-config --cflags libvncserver 2>/dev/null)
REPLAY_DIR := $(BUILD)/fuzz-replay
REPLAYS := $(patsubst $(FUZZ_DIR)/%,$(REPLAY_DIR)/%,$(FUZZERS))

define replay_rule
$(REPLAY_DIR)/$(1): tests/fuzz/$(1).c tests/fuzz/replay.c $($(1)_SRCS) $($(1)_INCLUDED)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  REPLAY  $$@")
	$$(Q)$$(REPLAY_CC) $$(REPLAY_CFLAGS) -o $$@ $$(filter-out $($(1)_INCLUDED),$$^) $$($(1)_LIBS) -lpthread
endef
$(foreach f,$(FUZZERS),$(eval $(call replay_rule,$(notdir $(f)))))

fuzz-replay: $(REPLAYS)
	@set -e; for f in $(REPLAYS); do \
		n=$$(basename $$f); [ -d tests/fuzz/corpus/$$n ] || continue; \
		if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			$$f tests/fuzz/corpus/$$n > $(REPLAY_DIR)/$$n.log 2>&1; then \
			tail -n 40 $(REPLAY_DIR)/$$n.log; echo "fuzz-replay: $$n FAILED"; exit 1; fi; \
		tail -n 1 $(REPLAY_DIR)/$$n.log; \
	done
