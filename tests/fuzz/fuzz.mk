# libFuzzer harnesses (tests/fuzz/*_fuzz.c), built with clang into $(BUILD)/fuzz/ from
# the sources each needs (<name>_SRCS) and any libraries (<name>_LIBS). Not part of `make
# check`: `make fuzz` builds them, `make fuzz-smoke` runs each for FUZZ_SECONDS (default
# 20) from its corpus directory.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -Wall -Wextra -Werror \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(shell pkg-config --cflags libvncserver 2>/dev/null)
FUZZ_DIR := $(BUILD)/fuzz
vnc_input_fuzz_SRCS := display/vnc_input.c display/keymap.c lib/log.c
i8042_fuzz_SRCS := hv/dev/i8042.c lib/log.c
virtio_blk_fuzz_SRCS := hv/dev/pci.c hv/dev/virtio_pci.c hv/dev/virtqueue.c hv/dev/virtio_blk.c \
	hv/dev/blk_overlay.c lib/log.c tests/unit/fake_vm.c
websocket_fuzz_SRCS := web/websocket.c lib/log.c
websocket_fuzz_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
FUZZERS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/*_fuzz.c))

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZERS)

define fuzz_rule
$(FUZZ_DIR)/$(1): tests/fuzz/$(1).c $($(1)_SRCS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  FUZZ    $$@")
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $$^ $$($(1)_LIBS) -lpthread
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(notdir $(f)))))

fuzz-smoke: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do \
		n=$$(basename $$f); mkdir -p $(FUZZ_DIR)/corpus/$$n; \
		echo "fuzz-smoke: $$n for $(FUZZ_SECONDS) s"; \
		if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(FUZZ_DIR)/corpus/$$n > $(FUZZ_DIR)/$$n.log 2>&1; then \
			tail -n 40 $(FUZZ_DIR)/$$n.log; echo "fuzz-smoke: $$n FAILED"; exit 1; fi; \
		grep -E 'stat::(number_of_executed_units|new_units_added)' $(FUZZ_DIR)/$$n.log; \
	done
