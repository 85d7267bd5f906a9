# `make kvmbox` (included by the top Makefile): the KVM host in a box for machines
# without /dev/kvm. build/bin/kvmbox (the runner), build/kvmbox/{vmlinuz,initrd.img}
# (Debian's kernel with kvm_amd and kvmbox-agent, from the packages `make guest`
# caches). Always under build/, like the guest image: neither depends on SAN.
KVMBOX_OUT := build/kvmbox
KVMBOX_AGENT := build/kvmbox/kvmbox-agent
KVMBOX_RUNNER := build/bin/kvmbox

.PHONY: kvmbox
kvmbox: $(KVMBOX_RUNNER) $(KVMBOX_OUT)/initrd.img

# The agent is static: the box has no C library of its own.
$(KVMBOX_AGENT): kvmbox/agent.c kvmbox/proto.c kvmbox/proto.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) -std=gnu11 -O2 $(WARNINGS) -D_GNU_SOURCE -I. -static -o $@ \
		kvmbox/agent.c kvmbox/proto.c

$(KVMBOX_RUNNER): kvmbox/kvmbox.c kvmbox/proto.c kvmbox/proto.h hostd/kvmprobe.c \
		hostd/kvmprobe.h lib/clock.c lib/clock.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) -std=gnu11 -O2 -g $(WARNINGS) -D_GNU_SOURCE -I. -o $@ \
		kvmbox/kvmbox.c kvmbox/proto.c hostd/kvmprobe.c lib/clock.c -lpthread

$(KVMBOX_OUT)/vmlinuz $(KVMBOX_OUT)/initrd.img &: kvmbox/build-box.sh kvmbox/init \
		kvmbox/modules.list guest/modules.sh guest/mkcpio.py $(KVMBOX_AGENT) \
		$(GUEST_OUT)/vmlinuz
	@$(if $(Q),echo "  KVMBOX  $(KVMBOX_OUT)/vmlinuz $(KVMBOX_OUT)/initrd.img")
	$(Q)kvmbox/build-box.sh $(KVMBOX_OUT) $(GUEST_OUT) $(GUEST_CACHE) $(KVMBOX_AGENT) \
		$(if $(Q),>/dev/null)
