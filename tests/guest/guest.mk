# Freestanding test guests (tests/guest/*.c), built with the system gcc whatever SAN
# says: each is an ELF64 with a PVH note, loaded at 1 MiB. <name>-nopvh.elf has the note
# stripped so loaders take the plain 64-bit entry. Every guest links the runtime's core
# (start, isr, rt) and, from an archive, only the optional modules it uses (fb, i8042,
# scancode).
GUEST_CC ?= gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -fno-builtin -mno-red-zone -mgeneral-regs-only \
	-fcf-protection=none -Itests/guest/rt -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,tests/guest/rt/link.ld \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
GUEST_DIR := $(BUILD)/guests
GUEST_RT_OBJS := $(addprefix $(GUEST_DIR)/rt/,start.o isr.o rt.o)
GUEST_LIB_OBJS := $(addprefix $(GUEST_DIR)/rt/,fb.o i8042.o scancode.o)
GUEST_LIB := $(GUEST_DIR)/rt/libguest.a
GUEST_NAMES := $(patsubst tests/guest/%.c,%,$(wildcard tests/guest/*.c))
GUESTS := $(addprefix $(GUEST_DIR)/,$(addsuffix .elf,$(GUEST_NAMES)))

guests: $(GUESTS) $(GUEST_DIR)/serial-nopvh.elf

$(GUEST_DIR)/rt/%.o: tests/guest/rt/%.S
	@mkdir -p $(dir $@)
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<
$(GUEST_DIR)/rt/%.o: tests/guest/rt/%.c
	@mkdir -p $(dir $@)
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<
$(GUEST_LIB): $(GUEST_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^
$(GUEST_DIR)/%.o: tests/guest/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $<")
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<
$(GUEST_DIR)/%.elf: $(GUEST_DIR)/%.o $(GUEST_RT_OBJS) $(GUEST_LIB) tests/guest/rt/link.ld
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_RT_OBJS) $< $(GUEST_LIB)
$(GUEST_DIR)/%-nopvh.elf: $(GUEST_DIR)/%.elf
	$(Q)objcopy --remove-section .note.pvh $< $@
.SECONDARY: $(GUEST_RT_OBJS) $(GUEST_LIB_OBJS) $(GUESTS:.elf=.o)

# The desktop guest's bitmap font: a header generated from a Debian console font
# (package console-setup-linux) by tests/guest/mkfont.py.
DESKTOP_FONT ?= /usr/share/consolefonts/Lat15-Fixed16.psf.gz
$(GUEST_DIR)/desktop_font.h: tests/guest/mkfont.py $(wildcard $(DESKTOP_FONT))
	@mkdir -p $(dir $@)
	$(Q)python3 tests/guest/mkfont.py $(DESKTOP_FONT) $@
$(GUEST_DIR)/desktop.o: $(GUEST_DIR)/desktop_font.h
$(GUEST_DIR)/desktop.o: GUEST_CFLAGS += -I$(GUEST_DIR)
