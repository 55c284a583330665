"""Starts the real ticketd binary for black-box tests and talks HTTP to it (standard library only)."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ.get("TICKETD_BIN", "build/server/ticketd")
TICKETCTL = os.environ.get("TICKETCTL_BIN", "build/tools/ticketctl")
LOAD = os.environ.get("TICKETD_LOAD_BIN", "build/tools/ticketd-load")
ADMIN_TOKEN = "test-admin-token-0123456789"


class Server:
    """One ticketd process on a free loopback port with its own data directory."""

    def __init__(self, data_dir=None, demo=True, extra_args=()):
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="ticketd-bb-")
        self.demo = demo
        self.extra_args = list(extra_args)
        self.proc = None
        self.base = None
        self.output = []

    def start(self, deadline_s=30, wait_healthy=True):
        """Returns once /healthz answers, or with wait_healthy=False once "serving" is printed."""
        if self.proc is not None and self.proc.poll() is not None:
            self.stop(expect_clean=False)  # killed by the test: collect it before starting anew
        args = [BIN, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"] + self.extra_args
        if self.demo:
            args.append("--demo")
        env = dict(os.environ, TICKETD_ADMIN_TOKEN=ADMIN_TOKEN)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, text=True, encoding="utf-8")
        found = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.output.append(line)
                m = re.search(r"ticketd serving (http://[0-9.]+:[0-9]+)", line)
                if m and not found.is_set():
                    self.base = m.group(1)
                    found.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and not found.is_set():
            if self.proc.poll() is not None:
                break
            found.wait(0.05)
        if not found.is_set():
            self.stop()
            raise RuntimeError("ticketd did not start:\n" + "".join(self.output))
        if not wait_healthy:
            return self
        # Serving is announced once the listener is up; poll health until it answers.
        while time.monotonic() < end:
            status, _, _ = self.call("GET", "/healthz")
            if status == 200:
                return self
            time.sleep(0.05)
        raise RuntimeError("ticketd never became healthy")

    def stop(self, expect_clean=True):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
            if expect_clean and code != 0:
                raise RuntimeError("ticketd exited %d:\n%s" % (code, "".join(self.output)))
        if self.proc:
            self.pump.join(5)  # the output ends with the process
            self.proc.stdout.close()
        self.proc = None

    def cleanup(self):
        self.stop(expect_clean=False)
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        """Returns (status, parsed JSON or text, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        # Non-ASCII in the URL (e.g. ?q=分页) is sent percent-encoded, as a browser would.
        path = urllib.parse.quote(path, safe="/?&=%:+,;@")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, _decode(resp), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, _decode(e), dict(e.headers)
        except (ConnectionError, urllib.error.URLError):
            return 0, None, {}

    def metric(self, name):
        """A value of /metrics (read with the administrator's token), 0 when it is not there yet."""
        status, text, _ = self.call("GET", "/metrics", token=ADMIN_TOKEN)
        assert status == 200, (status, text)
        found = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
        return int(found.group(1)) if found else 0

    def missing_tickets(self, acked):
        """Of `acked` (ticket id -> the customer name sent), those not there with that name: read
        on one keep-alive connection, as there are thousands."""
        conn = http.client.HTTPConnection(self.base[len("http://"):], timeout=30)
        missing = []
        try:
            for tid, name in acked.items():
                conn.request("GET", "/api/v1/tickets/" + tid, headers={"Authorization": "Bearer " + ADMIN_TOKEN})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or json.loads(body)["fields"]["customer_name"] != name:
                    missing.append((tid, resp.status))
        finally:
            conn.close()
        return missing

    def login(self, user, password=None):
        status, body, _ = self.call("POST", "/api/v1/sessions",
                                    {"user": user, "password": password or "demo-" + user})
        assert status == 201, (status, body)
        return body["token"]


def close_frame(ws, received=None):
    """Reads a websocket-client connection's frames up to the server's close; its code and reason
    (what follows the 2-byte code). Text messages before it go into `received` when given. RFC
    6455's opcodes by number: this module needs only the standard library."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == 0x8:  # close
            return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8")
        if received is not None and opcode == 0x1:  # text
            received.append(json.loads(data))


def read_acked(path):
    """What `ticketd-load --acked` wrote: ticket id -> the customer name sent."""
    with open(path, encoding="utf-8") as f:
        return dict(line.split(" ", 1) for line in f.read().splitlines())


def _decode(resp):
    data = resp.read()
    kind = resp.headers.get("Content-Type", "")
    if kind.startswith("application/json"):
        return json.loads(data.decode("utf-8"))
    if kind.startswith("text/"):
        return data.decode("utf-8")
    return data
