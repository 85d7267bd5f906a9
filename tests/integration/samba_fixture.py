"""A Samba Active Directory domain controller (Debian's samba-ad-dc) for the tests:
provisioned in a temporary directory (realm VDI.TEST, domain VDI, host dc1), serving only
LDAP on 127.0.0.1 (ports 389 and 636, the only ones Samba's LDAP server takes: needs
root), with a certificate from a CA of the test's own for dc1.vdi.test and 127.0.0.1.
Users and groups are made with samba-tool before the DC starts. Always stopped."""
import os
import shutil
import signal
import socket
import subprocess
import time

SAMBA = shutil.which("samba") or "/usr/sbin/samba"
SAMBA_TOOL = shutil.which("samba-tool") or "/usr/bin/samba-tool"
REALM, DOMAIN, HOST = "VDI.TEST", "VDI", "dc1"
BASE = "DC=vdi,DC=test"
ADMIN_PW = "Adm1n-Passw0rd!"


def why_not():
    if not os.path.exists(SAMBA) or not os.path.exists(SAMBA_TOOL):
        return "needs samba, samba-ad-dc and samba-ad-provision (make deps)"
    if os.geteuid() != 0:
        return "Samba's LDAP server takes ports 389 and 636: run as root"
    for port in (389, 636):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return "port %d on 127.0.0.1 is taken" % port
    return None


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class SambaDC:
    def __init__(self, workdir, users=(), groups=(), setup=()):
        """users: (name, password, extra samba-tool args); groups: (name, members);
        setup: further samba-tool argument lists, run before the DC starts."""
        self.dir = workdir
        self.proc = None
        self.log_path = os.path.join(workdir, "samba.log")
        self.conf = os.path.join(workdir, "etc", "smb.conf")
        self.ca = self._certificates()
        self._tool("domain", "provision", "--targetdir=" + workdir, "--realm=" + REALM,
                   "--domain=" + DOMAIN, "--host-name=" + HOST, "--server-role=dc",
                   "--dns-backend=SAMBA_INTERNAL", "--host-ip=127.0.0.1",
                   "--adminpass=" + ADMIN_PW, "--option=interfaces=lo",
                   "--option=bind interfaces only=yes", local=False, timeout=180)
        # short password rules for the tests' accounts, no complexity surprises
        self._tool("domain", "passwordsettings", "set", "--complexity=off",
                   "--min-pwd-length=4", "--history-length=0", "--min-pwd-age=0")
        for name, password, *extra in users:
            self._tool("user", "add", name, password, *(extra[0] if extra else ()))
        for name, members in groups:
            self._tool("group", "add", name)
            if members:
                self._tool("group", "addmembers", name, ",".join(members))
        for args in setup:
            self._tool(*args)
        self.start()

    def _certificates(self):
        d = os.path.join(self.dir, "tls")
        os.makedirs(d)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=VDI test domain CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "dc.key", "-out", "dc.csr", "-subj", "/CN=dc1.vdi.test", cwd=d)
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:dc1.vdi.test\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "dc.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "dc.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
        os.chmod(os.path.join(d, "dc.key"), 0o600)
        return os.path.join(d, "ca.pem")

    def _tool(self, *args, local=True, timeout=60):
        cmd = [SAMBA_TOOL, *args]
        if local:
            cmd += ["-H", os.path.join(self.dir, "private", "sam.ldb"), "-s", self.conf]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=self.dir)
        if p.returncode != 0:
            raise RuntimeError("samba-tool %s failed:\n%s%s" % (
                " ".join(args[:3]), p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def tool(self, *args):
        """samba-tool on the running DC's database (users, groups, settings)."""
        return self._tool(*args)

    def start(self):
        tls = os.path.join(self.dir, "tls")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SAMBA, "-i", "-M", "single", "-s", self.conf, "--option=server services=ldap",
             "--option=dns forwarder=", "--option=tls enabled=yes",
             "--option=tls keyfile=" + os.path.join(tls, "dc.key"),
             "--option=tls certfile=" + os.path.join(tls, "dc.pem"),
             "--option=tls cafile=" + os.path.join(tls, "ca.pem")],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", 636)) == 0:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("samba did not start:\n" + self.log()[-3000:])
            time.sleep(0.1)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self._log.close()
        self.proc = None
