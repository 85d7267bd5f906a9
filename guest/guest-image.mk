# `make guest`: the Linux desktop guest image for end-to-end tests and the demo (QEMU
# engine): build/guest/{vmlinuz,initrd.img,home.img}. Always under build/, whatever SAN
# says (the image does not depend on it). The Debian .debs it is made from are cached in
# build/guest-cache/, so only the first build needs the network. See guest/README.md.
GUEST_OUT := build/guest
GUEST_CACHE := build/guest-cache
# The console font the image loads on tty0 (package console-setup-linux, as DESKTOP_FONT).
GUEST_FONT ?= /usr/share/consolefonts/Lat15-Fixed16.psf.gz
GUEST_BOOT_SRCS := guest/build-image.sh guest/mkcpio.py guest/modules.sh guest/modules.list guest/init \
	guest/inittab guest/profile guest/rc.shutdown guest/console-shell guest/vdi-banner \
	guest/udhcpc.script guest/acpi-power-button $(wildcard $(GUEST_FONT))

.PHONY: guest guest-clean
guest: $(GUEST_OUT)/vmlinuz $(GUEST_OUT)/initrd.img $(GUEST_OUT)/home.img

$(GUEST_OUT)/vmlinuz $(GUEST_OUT)/initrd.img &: $(GUEST_BOOT_SRCS)
	@$(if $(Q),echo "  GUEST   $(GUEST_OUT)/vmlinuz $(GUEST_OUT)/initrd.img")
	$(Q)GUEST_FONT=$(GUEST_FONT) guest/build-image.sh $(GUEST_OUT) $(GUEST_CACHE) $(if $(Q),>/dev/null)

# The pristine home disk: users of it (tests, hostd) boot a copy, never this file.
$(GUEST_OUT)/home.img: guest/mkhome.sh
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)guest/mkhome.sh $@ 64 $(if $(Q),>/dev/null)

# Removes the image but keeps the downloaded .debs.
guest-clean:
	rm -rf $(GUEST_OUT) $(GUEST_CACHE)/initrd-stage $(GUEST_CACHE)/unpacked
