"""A throw-away OpenLDAP slapd for integration tests: mdb + memberof overlay, optional
TLS, loaded with conf/test-ldap/directory.ldif, logging connections and operations
(loglevel stats). Shared by test_auth_ldap.py and the broker's tests."""
import os
import signal
import socket
import subprocess
import time

TOP = os.environ.get("VDI_TOP", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SLAPD = "/usr/sbin/slapd"
DIRECTORY = os.path.join(TOP, "conf", "test-ldap", "directory.ldif")
BASE = "dc=example,dc=com"
ADMIN = "cn=admin," + BASE
SERVICE = "cn=vdi-broker,ou=services," + BASE


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Slapd:
    """One slapd in workdir, logging connections and operations (loglevel stats); with
    self_password users may write their own userPassword."""

    def __init__(self, workdir, tls=None, load=True, self_password=False):
        self.dir = workdir
        os.makedirs(os.path.join(workdir, "db"))
        self.port = free_port()
        self.ldaps_port = free_port() if tls else None
        self.uri = "ldap://127.0.0.1:%d/" % self.port
        self.ldaps_uri = "ldaps://127.0.0.1:%d/" % self.ldaps_port if tls else None
        conf = [
            "include /etc/ldap/schema/core.schema",
            "include /etc/ldap/schema/cosine.schema",
            "include /etc/ldap/schema/inetorgperson.schema",
            "include /etc/ldap/schema/nis.schema",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload memberof",
            "pidfile %s/slapd.pid" % workdir,
        ]
        if tls:
            conf += ["TLSCertificateFile %s" % tls["cert"],
                     "TLSCertificateKeyFile %s" % tls["key"],
                     "TLSCACertificateFile %s" % tls["ca"]]
        conf += [
            "database mdb",
            "maxsize 10485760",
            'suffix "%s"' % BASE,
            'rootdn "%s"' % ADMIN,
            "rootpw secret",
            "directory %s/db" % workdir,
            "overlay memberof",
            # self_password: users may change their own password (RFC 3062)
            "access to attrs=userPassword%s by anonymous auth by * none"
            % (" by self write" if self_password else ""),
            "access to * by * read",
        ]
        self.conf = os.path.join(workdir, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        urls = self.uri + (" " + self.ldaps_uri if tls else "")
        self.log_path = os.path.join(workdir, "slapd.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SLAPD, "-h", urls, "-f", self.conf, "-d", "256"],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_port(self.port, self.proc):
            self.stop()
            raise AssertionError("slapd did not start:\n" + self.log())
        if load:
            self.modify(DIRECTORY)

    def modify(self, ldif_path, *extra):
        subprocess.run(["ldapmodify", "-a", "-x", "-H", self.uri, "-D", ADMIN, "-w", "secret",
                        "-f", ldif_path, *extra], check=True, capture_output=True, timeout=30)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_after(self, start, marker):
        """The log from offset start up to a marker search (made now), so everything
        the server did before the marker is in the text returned."""
        subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-b", BASE, "-s", "base",
                        "(cn=%s)" % marker], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log()[start:]
            if marker in text:
                return text
            time.sleep(0.02)
        raise AssertionError("marker %s never logged" % marker)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
