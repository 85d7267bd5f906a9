# Browser side of vdi, included by the top Makefile: the npm packages (package.json and
# package-lock.json at the top: @novnc/novnc for the portal's viewer, playwright-core
# for tests/browser/) installed with `npm ci` into node_modules/, and `web-static`, the
# portal staged with noVNC under novnc/ for a broker whose [http] static_dir points
# there (until the broker serves /novnc/ from node_modules/@novnc/novnc itself).
NPM ?= npm
NODE_STAMP := node_modules/.package-lock.json
NOVNC_DIR := node_modules/@novnc/novnc
WEB_STATIC := $(BUILD)/web/static

.PHONY: web-deps web-static browser-check
web-deps: $(NODE_STAMP)
$(NODE_STAMP): package.json package-lock.json
	@$(if $(Q),echo "  NPM     ci")
	$(Q)$(NPM) ci --no-audit --no-fund --loglevel=error
	$(Q)touch $@

web-static: $(NODE_STAMP)
	$(Q)rm -rf $(WEB_STATIC) && mkdir -p $(WEB_STATIC)/novnc
	$(Q)cp -R web/static/. $(WEB_STATIC)/
	$(Q)cp -R $(NOVNC_DIR)/core $(NOVNC_DIR)/vendor $(NOVNC_DIR)/LICENSE.txt $(WEB_STATIC)/novnc/
	@echo "web-static: portal with noVNC in $(WEB_STATIC)"

# The browser tests alone (they also run in `make integration` through
# tests/integration/test_browser_portal.py).
browser-check: all $(NODE_STAMP)
	$(Q)cd tests/integration && VDI_BUILD=$(abspath $(BUILD)) $(PYTEST) -q -rs -p no:cacheprovider test_browser_portal.py
