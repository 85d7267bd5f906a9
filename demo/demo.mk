# `make demo` (included by the top Makefile): builds what the demo needs, then
# demo/run-demo.sh starts a broker and a host agent on loopback with conf/demo/, prints
# the portal's URL and the demo logins, and runs until Ctrl-C. `make demo-smoke` starts
# it all, logs in as alice with curl, lists her desktops and stops (exit 0 when it works).
.PHONY: demo demo-smoke
# On a terminal the script runs as a job of its own (bash -m) and so alone gets Ctrl-C:
# it stops everything and exits 0, and make, which never sees the signal, with it.
demo: deps
	@$(MAKE) --no-print-directory all guest kvmbox web-static certs SAN=$(SAN)
	@if [ -t 0 ]; then VDI_BUILD=$(abspath $(BUILD)) bash -mc demo/run-demo.sh; \
	else VDI_BUILD=$(abspath $(BUILD)) demo/run-demo.sh; fi

demo-smoke: deps
	@$(MAKE) --no-print-directory all guest kvmbox web-static certs SAN=$(SAN)
	@VDI_BUILD=$(abspath $(BUILD)) demo/run-demo.sh --smoke
