"""Every option of every daemon is in its example configuration (set or commented out,
under its section) and named in its man page: the option tables, printed by `-n -v`,
are compared with conf/*.conf and docs/*.8."""
import os
import re
import subprocess

import pytest

from conftest import BIN, TOP

DAEMONS = [("vdi-broker", "conf/broker.conf", "docs/vdi-broker.8"),
           ("vdi-hostd", "conf/hostd.conf", "docs/vdi-hostd.8")]


def table_of(program, conf):
    """[(section, option)] as the program's option table has them."""
    out = subprocess.run([os.path.join(BIN, program), "-n", "-v", "-c", os.path.join(TOP, conf)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    section, options = None, []
    for line in out.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            options.append((section, line.split("=")[0].strip()))
    return options


@pytest.mark.parametrize("program,conf,man", DAEMONS, ids=[d[0] for d in DAEMONS])
def test_every_option_is_in_the_example_and_the_man_page(program, conf, man):
    options = table_of(program, conf)
    assert len(options) > 20, options
    written, section = set(), None
    for line in open(os.path.join(TOP, conf)):
        m = re.match(r"^\[([\w-]+)\]", line)
        if m:
            section = m.group(1)
        m = re.match(r"^#?([a-z_]+) =", line)
        if m:
            written.add((section, m.group(1)))
    page = open(os.path.join(TOP, man)).read().replace("\\-", "-").replace("\\", "")
    assert [o for o in options if o not in written] == [], "not in " + conf
    assert [o for o in options if not re.search(r"\b%s\b" % re.escape(o[1]), page)] == [], \
        "not in " + man
