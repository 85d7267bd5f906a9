"""vdi-hostd for integration tests: a daemon in a temporary directory on free loopback
ports with the certificates of the `certs` fixture (conftest), an HTTPS client with the
broker's certificate for its API, and a TLS client for its display relay. Shared by
test_hostd*.py, test_broker_hosts.py, test_browser_*.py and bench/gateway/run.py."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import time

from conftest import BIN, hostd_launcher
from daemon import Daemon

HOSTD = os.path.join(BIN, "vdi-hostd")
VDIHV = os.path.join(BIN, "vdi-hv")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_context(certs, which="broker"):
    """TLS client context trusting our CA; which: broker (good cert), other (a cert from
    another CA), ("host", HOST_ID) (that host's certificate from our CA: not the broker's)
    or None (no client certificate)."""
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if which == "broker":
        ctx.load_cert_chain(str(certs.broker_crt), str(certs.broker_key))
    elif which == "other":
        ctx.load_cert_chain(str(certs.other / "broker.crt"), str(certs.other / "broker.key"))
    elif isinstance(which, tuple) and which[0] == "host":
        ctx.load_cert_chain(*(str(p) for p in certs.host(which[1])))
    return ctx


def heartbeat_section(hb_port):
    """hostd's [broker] section: heartbeats to a broker on loopback at hb_port."""
    return "[broker]\nheartbeat_url = https://127.0.0.1:%d/api/v1/hosts/heartbeat\n" % hb_port


class Hostd(Daemon):
    """One vdi-hostd with its own state directory, run directory (short: unix socket
    paths), ports and configuration. stop() ends it; kill_vms() ends every VMM it left.
    host_id: the id it runs as; cert_of: the host id whose certificate it presents
    (default: its own); vdihv: the vdi-hv binary it runs."""

    def __init__(self, workdir, certs, template_dirs, extra="", host_id="test-host",
                 cert_of=None, vdihv=VDIHV):
        super().__init__(HOSTD, workdir / "hostd.conf", workdir / "hostd.log")
        self.workdir = workdir
        self.certs = certs
        self.state = workdir / "state"
        self.run = tempfile.mkdtemp(prefix="vh-", dir="/tmp")
        self.api_port, self.relay_port = free_port(), free_port()
        self.host_id = host_id
        crt, key = (certs.dir / "hosts" / f"{cert_of or host_id}.crt",
                    certs.dir / "hosts" / f"{cert_of or host_id}.key")
        self.conf.write_text(f"""[hostd]
host_id = {host_id}
state_dir = {self.state}
run_dir = {self.run}
template_dirs = {template_dirs}
[api]
listen = 127.0.0.1:{self.api_port}
cert = {crt}
key = {key}
ca = {certs.ca}
max_body = 4096
[relay]
listen = 127.0.0.1:{self.relay_port}
handshake_timeout = 3s
[qemu]
accel = tcg
[vdi-hv]
binary = {vdihv}
launcher = {hostd_launcher()}
{extra}
""")

    def vmm_pids(self, desktop):
        """(vmm pid, monitor pid) from the desktop's pid file."""
        fields = open(os.path.join(self.run, desktop, "vmm.pid")).read().split()
        return int(fields[0]), int(fields[2])

    def kill_vms(self):
        for name in os.listdir(self.run) if os.path.isdir(self.run) else []:
            try:
                vmm, monitor = self.vmm_pids(name)
            except (OSError, ValueError, IndexError):
                continue
            for pid in (vmm, monitor):
                try:
                    os.killpg(pid, signal.SIGKILL)  # the monitor leads the VMM's group
                except OSError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.run, ignore_errors=True)

    # ---- the API ----

    def request(self, method, path, body=None, raw=None, cert="broker", timeout=30):
        """Returns (status, decoded JSON or None)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, timeout=timeout,
                                           context=client_context(self.certs, cert))
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                                 else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def raw_request(self, head, body):
        """Sends head, then as much of body as the server takes; returns the status line."""
        s = client_context(self.certs).wrap_socket(
            socket.create_connection(("127.0.0.1", self.api_port), timeout=30),
            server_hostname="127.0.0.1")
        try:
            s.sendall(head)
            try:
                for i in range(0, len(body), 16384):
                    s.sendall(body[i:i + 16384])
            except (ssl.SSLError, ConnectionError):
                pass  # closed on us after the answer
            reply = b""
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\r\n")[0]
        except (ssl.SSLError, ConnectionError) as e:
            return repr(e).encode()
        finally:
            s.close()

    def ok(self, method, path, body=None, expect=(200, 201, 202)):
        status, reply = self.request(method, path, body)
        assert status in expect, f"{method} {path} -> {status} {reply}\n{self.log()}"
        return reply

    def desktop(self, did):
        return self.ok("GET", f"/api/v1/desktops/{did}", expect=(200,))

    def wait_state(self, did, states, timeout=60):
        states = (states,) if isinstance(states, str) else states
        deadline = time.monotonic() + timeout
        while True:
            d = self.desktop(did)
            if d["state"] in states:
                return d
            assert time.monotonic() < deadline, \
                f"desktop {did} still {d['state']} after {timeout}s, not {states}: {d}\n{self.log()}"
            time.sleep(0.1)

    def ticket(self, did, ticket, ttl=60, view_only=False):
        return self.request("POST", f"/api/v1/desktops/{did}/ticket",
                            {"ticket": ticket, "expires": int(time.time()) + ttl,
                             "view_only": view_only})

    def relay(self, ticket_line, cert="broker"):
        """A TLS connection to the relay that has sent its first line."""
        ctx = client_context(self.certs, cert)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.relay_port), timeout=30),
                            server_hostname="127.0.0.1")
        s.sendall(ticket_line)
        return s



def closed_without_data(sock, timeout=5):
    """Whether the peer closed the connection without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        sock.close()
