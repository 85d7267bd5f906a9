"""One of our daemons under test (vdi-broker, vdi-hostd): started with its configuration
file and its output appended to a log, ready once the log says " ready", stopped with
SIGTERM (start() and stop() return what the tests check), the log's tail for assertion
messages. broker_fixture.Broker and hostd_fixture.Hostd build on it."""
import os
import signal
import subprocess
import time


class Daemon:
    def __init__(self, binary, conf, log_path):
        self.binary = binary
        self.conf = conf
        self.log_path = log_path
        self.proc = None
        self._log = None

    def start(self, timeout=30):
        self._log = open(self.log_path, "ab")
        start = os.path.getsize(self.log_path)
        name = os.path.basename(self.binary)
        self.proc = subprocess.Popen([self.binary, "-c", os.fspath(self.conf)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while b" ready" not in open(self.log_path, "rb").read()[start:]:
            assert self.proc.poll() is None, "%s exited (%s):\n%s" % (
                name, self.proc.returncode, self.log())
            assert time.monotonic() < deadline, "%s not ready:\n%s" % (name, self.log())
            time.sleep(0.02)
        return self

    def stop(self):
        """SIGTERM; returns the exit status (0 expected; non-zero under SAN=1 on a leak)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        status, self.proc = self.proc.returncode, None
        return status

    def kill(self):
        """SIGKILL: a crash, for the tests of what survives one."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        self.proc = None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-8000:]
