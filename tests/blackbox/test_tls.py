"""TLS on the API's port (--tls-cert/--tls-key): HTTPS and WSS with a certificate made for the
test, plain HTTP on the same port still, old protocol versions and stalled handshakes refused
without disturbing anyone, and clear errors for a certificate that cannot be used."""
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request
import warnings

import websocket  # Debian's python3-websocket

from ticketd_server import ADMIN_TOKEN, BIN, Server
from test_api import SUBMISSION, wait_for


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ticketd-tls-")
        cls.cert, cls.key = make_certificate(cls.dir)
        cls.s = Server(extra_args=["--tls-cert", cls.cert, "--tls-key", cls.key]).start()
        cls.port = int(cls.s.base.rsplit(":", 1)[1])
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.s.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def https(self, method, path, body=None, token=None):
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())

    def test_https_and_wss_with_plain_http_on_the_same_port(self):
        status, session = self.https("POST", "/api/v1/sessions", {"user": "li", "password": "demo-li"})
        self.assertEqual(status, 201)
        ws = websocket.create_connection("wss://127.0.0.1:%d/api/v1/stream?token=%s" % (self.port, ADMIN_TOKEN),
                                         sslopt={"ca_certs": self.cert}, timeout=10)
        self.addCleanup(ws.close)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
        status, ticket = self.https("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                                  "fields": SUBMISSION}, session["token"])
        self.assertEqual(status, 201)
        event = json.loads(ws.recv())
        self.assertEqual((event["type"], event["ticket"]["id"]), ("TicketSubmitted", ticket["id"]))
        # Plain HTTP on the same port, as before.
        status, view, _ = self.s.call("GET", "/api/v1/tickets/" + ticket["id"], token=ADMIN_TOKEN)
        self.assertEqual((status, view["id"]), (200, ticket["id"]))

    def test_old_protocols_and_stalled_handshakes_are_refused_without_harm(self):
        # A client that offers TLS 1.1 at most (its own library's floor lowered, so that the refusal
        # is the server's: a protocol_version alert).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.load_verify_locations(self.cert)
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.port)) as raw:
            with self.assertRaises(ssl.SSLError) as refused:
                old.wrap_socket(raw, server_hostname="127.0.0.1")
        self.assertEqual(refused.exception.reason, "TLSV1_ALERT_PROTOCOL_VERSION")
        # A client that starts a handshake and stops: others are served meanwhile.
        stalled = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(stalled.close)
        stalled.sendall(b"\x16\x03\x01\x00\xa0\x01\x00\x00\x9c\x03\x03")  # a ClientHello's start
        garbage = socket.create_connection(("127.0.0.1", self.port))
        garbage.sendall(b"\x16\x03\x01\xff\xff" + os.urandom(64))  # not TLS after all
        garbage.close()
        started = time.monotonic()
        status, health = self.https("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertLess(time.monotonic() - started, 5)

    def test_a_hangup_reloads_the_certificate_for_new_connections(self):
        directory = tempfile.mkdtemp(prefix="ticketd-tls-reload-", dir=self.dir)
        cert, key = make_certificate(directory)
        pem = lambda: pathlib.Path(cert).read_text()
        first = pem()
        s = Server(extra_args=["--tls-cert", cert, "--tls-key", key]).start()
        self.addCleanup(s.cleanup)
        port = int(s.base.rsplit(":", 1)[1])
        trusting = lambda pem: ssl.create_default_context(cadata=pem)

        def health(ctx):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
            return conn

        kept = health(trusting(first))  # a connection opened on the first certificate
        make_certificate(directory)  # renewed in place, as certbot would
        second = pem()
        self.assertNotEqual(first, second)
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reloaded" in line for line in s.output), what="the reload")
        health(trusting(second)).close()
        with self.assertRaises(ssl.SSLCertVerificationError):
            health(trusting(first))
        kept.request("GET", "/healthz")  # the open connection goes on with its certificate
        response = kept.getresponse()
        response.read()
        self.assertEqual(response.status, 200)
        kept.close()

        with open(key, "w") as f:
            f.write("not a key")
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("not reloaded" in line for line in s.output), what="the refused reload")
        health(trusting(second)).close()  # the previous certificate stays served
        s.stop()  # and a stop still ends cleanly with the hangup handler in place

    def test_unusable_certificates_are_named_at_start(self):
        for args, message in (
                (["--tls-cert", os.path.join(self.dir, "missing.pem"), "--tls-key", self.key], "cannot read"),
                (["--tls-cert", self.key, "--tls-key", self.key], "cannot use the TLS certificate"),
                (["--tls-cert", self.cert], "--tls-cert and --tls-key go together")):
            with tempfile.TemporaryDirectory() as data:
                run = subprocess.run([BIN, "--data-dir", data, "--listen", "127.0.0.1:0"] + args,
                                     capture_output=True, text=True, timeout=60)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn(message, run.stderr + run.stdout)


if __name__ == "__main__":
    unittest.main()
