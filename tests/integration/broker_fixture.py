"""vdi-broker for integration tests: a daemon in a temporary directory on free loopback
ports (its self-signed certificate trusted by the test client), and an HTTPS client that
keeps the session cookie and CSRF token the way a browser-based portal would. Shared by
tests/integration/test_broker_*.py and bench/broker/run.py."""
import http.client
import json
import os
import resource
import socket
import ssl
import subprocess
import threading
import time

from daemon import Daemon

TOP = os.environ.get("VDI_TOP", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.path.join(os.environ.get("VDI_BUILD", os.path.join(TOP, "build")), "bin")
BROKER = os.path.join(BIN, "vdi-broker")
VDICTL = os.path.join(BIN, "vdictl")


def hosts_section(certs, hb_port, host_timeout="3s", request_timeout="5s"):
    """The [hosts] section of a broker that drives real hosts: its client certificate and
    the CA from the test CA (the certs fixture), heartbeats taken on 127.0.0.1:hb_port."""
    return (f"[hosts]\ncert = {certs.broker_crt}\nkey = {certs.broker_key}\nca = {certs.ca}\n"
            f"heartbeat_listen = 127.0.0.1:{hb_port}\nhost_timeout = {host_timeout}\n"
            f"request_timeout = {request_timeout}\n")


def wait(what, fn, timeout=30, interval=0.2):
    """fn()'s first true value, asked every interval seconds; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker(Daemon):
    """One vdi-broker with its own state directory and configuration."""

    def __init__(self, workdir, conf="", port=None, binary=BROKER):
        super().__init__(binary, os.path.join(workdir, "broker.conf"),
                         os.path.join(workdir, "broker.log"))
        self.workdir = workdir
        self.state = os.path.join(workdir, "state")
        self.port = port or free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        sections = {"broker": ["state_dir = " + self.state, "password_cost = 10"],
                    "http": ["listen = 127.0.0.1:%d" % self.port]}
        current = None
        for line in conf.strip().splitlines():
            line = line.strip()
            if line.startswith("["):
                current = line.strip("[]")
                sections.setdefault(current, [])
            elif line:
                key = line.split("=")[0].strip()
                sections[current] = [x for x in sections[current]
                                     if x.split("=")[0].strip() != key] + [line]
        with open(self.conf, "w") as f:
            for name, lines in sections.items():
                f.write("[%s]\n%s\n" % (name, "\n".join(lines)))

    def add_user(self, name, password, groups="", display_name=None):
        args = [BROKER, "-c", self.conf, "--add-user", name]
        if groups:
            args += ["--groups", groups]
        if display_name:
            args += ["--display-name", display_name]
        p = subprocess.run(args, input=(password + "\n").encode(), capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr.decode()

    def ssl_context(self):
        return ssl.create_default_context(cafile=os.path.join(self.state, "https.crt"))

    def client(self):
        return Client(self)

    def vdictl(self, *args, stdin=None, token=None, check=True):
        env = dict(os.environ, HOME=os.path.join(self.workdir, "home"))
        if token:
            env["VDICTL_TOKEN"] = token
        p = subprocess.run([VDICTL, "-u", self.url, "--ca",
                            os.path.join(self.state, "https.crt"), *args],
                           input=stdin.encode() if stdin else b"", capture_output=True,
                           timeout=60, env=env)
        if check:
            assert p.returncode == 0, (args, p.returncode, p.stderr.decode())
        return p


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:300])


class Client:
    """A user agent: cookie and CSRF token kept from the login, or a bearer token."""

    def __init__(self, broker):
        self.broker = broker
        self.cookie = None
        self.csrf = None
        self.token = None
        self.ctx = broker.ssl_context()

    def request(self, method, path, body=None, raw=None, headers=None, csrf=True,
                content_type="application/json", timeout=30):
        conn = http.client.HTTPSConnection("127.0.0.1", self.broker.port, timeout=timeout,
                                           context=self.ctx)
        try:
            h = {}
            data = raw if raw is not None else (json.dumps(body).encode()
                                                if body is not None else None)
            if data is not None and content_type:
                h["Content-Type"] = content_type
            if self.cookie:
                h["Cookie"] = "__Host-vdi_session=" + self.cookie
            if self.token:
                h["Authorization"] = "Bearer " + self.token
            if csrf and self.csrf and method not in ("GET", "HEAD"):
                h["X-CSRF-Token"] = self.csrf
            h.update(headers or {})
            try:
                conn.request(method, path, body=data, headers=h)
            except (ssl.SSLEOFError, BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before a big body is sent:
                # read the answer it gave.
                pass
            resp = conn.getresponse()
            return Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def login(self, user, password, bearer=False, expect=200):
        body = {"username": user, "password": password}
        if bearer:
            body["bearer"] = True
        r = self.request("POST", "/api/v1/login", body)
        assert r.status == expect, (r, self.broker.log())
        if r.status == 200:
            self.csrf = r.json["csrf_token"]
            if bearer:
                self.token = r.json["token"]
            else:
                cookies = r.header("Set-Cookie")
                assert cookies, r.headers
                self.cookie = cookies[0].split(";")[0].split("=", 1)[1]
        return r

    def ok(self, method, path, body=None, expect=(200, 201, 204)):
        r = self.request(method, path, body)
        assert r.status in expect, (method, path, r, self.broker.log()[-3000:])
        return r.json

    def connect(self, pool, timeout=60):
        """Connects until a ticket comes (202 while the desktop starts)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.request("POST", "/api/v1/desktops/%s/connect" % pool)
            if r.status != 202:
                return r
            assert time.monotonic() < deadline, ("still starting", r, self.broker.log())
            time.sleep(0.3)


def flood(port, silent, trickling):
    """From 127.0.0.2: silent TCP connections and TLS connections trickling a request one
    byte every 0.5 s. Returns the sockets, an Event that stops the trickling and its
    thread."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tricklers = []
    for _ in range(trickling):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=("127.0.0.2", 0))
            tricklers.append(ctx.wrap_socket(s))
        except (OSError, ssl.SSLError):
            break  # refused: the address has all it may hold
    held = []
    for _ in range(silent):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=("127.0.0.2", 0)))
    stop = threading.Event()

    def trickle():
        request = b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        i = 0
        while not stop.wait(0.5):
            for s in tricklers:
                try:
                    s.send(request[i % len(request):][:1])
                except OSError:
                    pass
            i += 1
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    return held + tricklers, stop, t
