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


def table_of(program, conf, tmp_path):
    """[(section, option)] as the program's option table has them (printed for a copy of
    conf naming stand-ins for its certificate files, which a fresh checkout has not made)."""
    for name in ("cert", "key", "ca"):
        (tmp_path / (name + ".pem")).write_text("")
    text = re.sub(r"(?m)^(cert|key|ca) = .*$", lambda m: "%s = %s/%s.pem" % (
        m.group(1), tmp_path, m.group(1)), open(os.path.join(TOP, conf)).read())
    copy = tmp_path / os.path.basename(conf)
    copy.write_text(text)
    p = subprocess.run([os.path.join(BIN, program), "-n", "-v", "-c", str(copy)], cwd=TOP,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    section, options = None, []
    for line in out.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            options.append((section, line.split("=")[0].strip()))
    return options


@pytest.mark.parametrize("program,conf,man", DAEMONS, ids=[d[0] for d in DAEMONS])
def test_every_option_is_in_the_example_and_the_man_page(program, conf, man, tmp_path):
    options = table_of(program, conf, tmp_path)
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
