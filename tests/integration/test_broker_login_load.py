"""vdi-broker under a burst of logins: 500 at once for unknown local users (each costs
a scrypt of 32 MiB at password_cost 15) keep the broker's peak memory bounded by
[auth] max_password_checks and password_check_queue, and every request is answered,
401 or 503 "busy" with Retry-After, none left hanging. Busy answers are not failed
logins: a real user logs in afterwards."""
import http.client
import json
import os
import threading
import time

import pytest

from broker_fixture import BROKER, Broker

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")

LOGINS = 500
RSS_LIMIT_KB = 256 * 1024


@pytest.fixture
def broker(tmp_path):
    # password_cost 15: the dummy check of an unknown user costs what a real one does
    # (32 MiB); the address limits (logins, connections) are out of the way so every
    # answer is 401 or 503.
    b = Broker(str(tmp_path), """
[broker]
password_cost = 15
[http]
max_connections = 600
max_connections_per_address = 600
[auth]
max_address_failures = 100000
max_user_failures = 1000
""")
    b.add_user("alice", "alice-pw")
    b.start()
    yield b
    status = b.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + b.log()


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def test_login_burst_is_bounded_and_answered(broker):
    ctx = broker.ssl_context()
    start = threading.Barrier(LOGINS, timeout=120)
    results = [None] * LOGINS

    def one(i):
        conn = http.client.HTTPSConnection("127.0.0.1", broker.port, timeout=60, context=ctx)
        try:
            conn.connect()
            try:
                start.wait()  # all connected: the requests arrive together
            except threading.BrokenBarrierError:
                pass
            t0 = time.monotonic()
            body = json.dumps({"username": "nobody%d" % i, "password": "guess-%d" % i})
            conn.request("POST", "/api/v1/login", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            results[i] = (resp.status, resp.getheader("Retry-After"), data,
                          time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 -- recorded and asserted below
            results[i] = ("error", None, repr(e).encode(), None)
        finally:
            conn.close()

    before = vm_kb(broker.proc.pid, "VmHWM")
    began = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(LOGINS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    elapsed = time.monotonic() - began
    hwm = vm_kb(broker.proc.pid, "VmHWM")

    hung = [i for i, t in enumerate(threads) if t.is_alive()]
    assert not hung, "%d logins never answered" % len(hung)
    statuses = {}
    for status, retry_after, data, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
        if status == 503:
            answer = json.loads(data)
            assert answer["code"] == "busy", answer
            assert retry_after and int(retry_after) >= 1, answer
            assert answer["retry_after"] == int(retry_after)
            assert answer["error"] == "too many logins at once, retry in %s s" % retry_after
    slowest = max(r[3] for r in results if r[3] is not None)
    print("\n%d logins in %.1f s (slowest %.1f s): %s; broker VmHWM %d kB before, %d kB after"
          % (LOGINS, elapsed, slowest, statuses, before, hwm))
    assert set(statuses) <= {401, 503}, (statuses, [r for r in results if r[0] not in (401, 503)][:3])
    assert hwm < RSS_LIMIT_KB, "broker peak RSS %d kB" % hwm
    # busy answers locked nobody out, and the broker still serves a real login
    broker.client().login("alice", "alice-pw")
