"""Every route, fed garbage: bodies that are not JSON, JSON of the wrong shape, members of the wrong
type, hostile path segments and query values; the live stream, fed garbage messages; and HTTP
broken below the JSON. API.md: every error is {"error":{"code","message"}} and never a 500 for
client input. The server stays up, its chain whole, and it stops cleanly."""
import copy
import http.client
import json
import os
import random
import socket
import sys
import unittest
import urllib.parse

import websocket  # Debian's python3-websocket

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import ADMIN_TOKEN, Server  # noqa: E402

# The router's routes (api/api.cpp, Api::route), with "*" where a path takes an id. POST /backups
# and DELETE /sessions are left out: the one copies the log for every request, the other would
# end the session the test calls with.
ROUTES = [
    ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/portal/tickets/*"),
    ("POST", "/api/v1/portal/tickets/*/confirm"),
    ("POST", "/api/v1/portal/tickets/*/rating"),
    ("POST", "/api/v1/portal/tickets/*/reopen"),
    ("POST", "/api/v1/portal/tickets/*/comments"),
    ("GET", "/api/v1/portal/tickets/*/attachments/*"),
    ("GET", "/api/v1/portal/tickets/*/print.pdf"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/backups"),
    ("DELETE", "/api/v1/backups/*"),
    ("POST", "/api/v1/me/password"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/*"),
    ("PATCH", "/api/v1/users/*"),
    ("GET", "/api/v1/users/*/sessions"),
    ("DELETE", "/api/v1/users/*/sessions/*"),
    ("POST", "/api/v1/rules/*/dry-run"),
    ("POST", "/api/v1/sla-policies/*/dry-run"),
    ("GET", "/api/v1/forms"),
    ("PUT", "/api/v1/forms/*"),
    ("GET", "/api/v1/forms/*"),
    ("PUT", "/api/v1/flows/*"),
    ("PUT", "/api/v1/rules/*"),
    ("PUT", "/api/v1/calendars/*"),
    ("PUT", "/api/v1/sla-policies/*"),
    ("PUT", "/api/v1/print-templates/*"),
    ("PUT", "/api/v1/dashboards/*"),
    ("GET", "/api/v1/dashboards/*"),
    ("PUT", "/api/v1/settings"),
    ("GET", "/api/v1/dashboards/*/data"),
    ("POST", "/api/v1/tickets/import"),
    ("POST", "/api/v1/tickets"),
    ("GET", "/api/v1/tickets"),
    ("GET", "/api/v1/inbox"),
    ("GET", "/api/v1/tickets/*"),
    ("PATCH", "/api/v1/tickets/*"),
    ("POST", "/api/v1/tickets/*/actions"),
    ("POST", "/api/v1/tickets/*/comments"),
    ("GET", "/api/v1/tickets/*/comments"),
    ("POST", "/api/v1/tickets/*/attachments"),
    ("POST", "/api/v1/tickets/*/rating"),
    ("POST", "/api/v1/tickets/*/reopen"),
    ("GET", "/api/v1/tickets/*/events"),
    ("GET", "/api/v1/tickets/*/notifications"),
    ("GET", "/api/v1/tickets/*/print.pdf"),
    ("POST", "/api/v1/attachments"),
    ("GET", "/api/v1/attachments/*"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/reports/*"),
    ("GET", "/api/v1/audit/verify"),
]

# Path segments: ones that exist in the reference application, then hostile ones.
SEGMENTS = ["T-000001", "service_ticket", "high", "service_monitor", "li", "by_channel", "nope",
            "..", "%2e%2e%2f%2e%2e", "%00", "%ZZ", "工单", "x" * 3000, "T-99999999999999999999"]
EXISTING = 6  # the first six segments name things that are there


def segment(rng):
    return rng.choice(SEGMENTS[:EXISTING] if rng.random() < 0.5 else SEGMENTS[EXISTING:])


QUERY_NAMES = ["limit", "cursor", "version", "as_of", "min_position", "from", "to", "tz", "bucket",
               "field", "form", "flow", "code", "template", "dry_run", "role", "status", "q", "sort",
               "bom", "assignee", "priority", "created_from"]
MEMBERS = ["form", "flow", "fields", "action", "comment", "text", "version", "name", "user",
           "password", "new_password", "roles", "score", "code", "ticket", "nodes", "edges",
           "widgets", "when", "assignee", "time_zone", "disabled", "display_name", "attachments",
           "reason", "events", "rows", "template", "trigger", "actions", "targets", "calendar"]
VALUES = [None, True, 0, -1, 1.5, 1e308, 2 ** 70, "", "x" * 20000, "工单", "\u0000", [], {},
          [None, {}], {"field": 1, "op": [], "value": {}}, {"a": {"b": {"c": []}}}]
RAW_BODIES = [b"", b"null", b"true", b"0", b"-1", b"1e999", b'"x"', b"[]", b"{}", b'{"a":',
              b"\xff\xfe\xfd", b'{"a":"\\ud800"}', b"[" * 5000 + b"]" * 5000,
              b'{"a":' * 3000 + b"1" + b"}" * 3000, b'{"form":"service_ticket","form":1}']


SUBMISSION = {"form": "service_ticket", "flow": "service_flow",
              "fields": {"customer_name": "王", "customer_phone": "+86 138 1234 5678", "channel": "电话",
                         "problem_type": "功能故障", "description": "打印机卡纸"}}


def valid_bodies(s):
    """A body each route would take, to mutate one place of: the reference application's own
    definitions as GET gives them, and commands as the README writes them."""
    def document(path):
        status, doc, _ = s.call("GET", path, token=ADMIN_TOKEN)
        assert status == 200, (path, status, doc)
        return {k: v for k, v in doc.items() if k not in ("id", "version")}

    def definition(kind, id):
        return document("/api/v1/%s/%s" % (kind, id))

    def first_definition(kind):
        status, listing, _ = s.call("GET", "/api/v1/" + kind, token=ADMIN_TOKEN)
        assert status == 200 and listing["items"], (kind, status, listing)
        return definition(kind, listing["items"][0]["id"])

    return {
        "/api/v1/sessions": {"user": "li", "password": "demo-li"},
        "/api/v1/users": {"id": "garbage_user", "name": "试用", "password": "a-long-password-1",
                          "roles": ["cs_agent"], "phone": "+86 139 0000 0000"},
        "/api/v1/users/*": {"name": "李", "roles": ["cs_agent"]},
        "/api/v1/me/password": {"password": "demo-li", "new_password": "another-password-2"},
        "/api/v1/forms/*": definition("forms", "service_ticket"),
        "/api/v1/flows/*": definition("flows", "service_flow"),
        "/api/v1/rules/*": first_definition("rules"),
        "/api/v1/calendars/*": definition("calendars", "cn-workdays"),
        "/api/v1/sla-policies/*": definition("sla-policies", "high"),
        "/api/v1/print-templates/*": first_definition("print-templates"),
        "/api/v1/dashboards/*": definition("dashboards", "service_monitor"),
        "/api/v1/settings": document("/api/v1/settings"),
        "/api/v1/tickets": SUBMISSION,
        "/api/v1/tickets/*": {"fields": {"priority": "高"}},
        "/api/v1/tickets/*/actions": {"action": "approve", "fields": {"complexity": "简单"},
                                      "comment": "客服处理即可"},
        "/api/v1/tickets/*/comments": {"text": "已联系客户"},
        "/api/v1/tickets/*/rating": {"score": 5, "comment": "很好"},
        "/api/v1/tickets/*/reopen": {"reason": "又卡纸了"},
    }


def places(doc, at=()):
    """Every place in a JSON document, as the path of keys and indexes to it."""
    yield at
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from places(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from places(v, at + (i,))


def mutated(doc, rng):
    """The document with one place changed: given a hostile value, taken out, or given a member
    nobody knows."""
    doc = copy.deepcopy(doc)
    at = rng.choice(list(places(doc))[1:] or [()])
    if not at:
        return rng.choice(VALUES)
    parent = doc
    for key in at[:-1]:
        parent = parent[key]
    what = rng.random()
    if what < 0.7:
        parent[at[-1]] = rng.choice(VALUES)
    elif what < 0.85:
        del parent[at[-1]]
    elif isinstance(parent, dict):
        parent[rng.choice(MEMBERS) + "_"] = rng.choice(VALUES)
    else:
        parent.append(copy.deepcopy(parent[at[-1]]))
    return doc


def a_server_with_a_ticket(test):
    """A demo server (removed when the test ends) holding ticket T-000001, and an agent's token."""
    s = Server(extra_args=["--rate-limit", "0"]).start()
    test.addCleanup(s.cleanup)
    li = s.login("li")
    status, answer, _ = s.call("POST", "/api/v1/tickets", SUBMISSION, token=li)
    test.assertEqual(status, 201, answer)
    return s, li


class GarbageEverywhere(unittest.TestCase):
    def test_every_route_answers_garbage_with_a_clear_error(self):
        s, li = a_server_with_a_ticket(self)
        bodies = valid_bodies(s)
        rng = random.Random(20261203)
        conn = Connection(s)
        answered = 0
        for method, template in ROUTES:
            for token in (ADMIN_TOKEN, li):
                for _ in range(12):
                    path = "/".join(segment(rng) if part == "*" else part
                                    for part in template.split("/"))
                    if rng.random() < 0.3:
                        path += "?" + "&".join("%s=%s" % (rng.choice(QUERY_NAMES), rng.choice(SEGMENTS))
                                               for _ in range(rng.randint(1, 3)))
                    path = urllib.parse.quote(path, safe="/?&=%")  # 工单 as a browser sends it
                    body = None
                    if method != "GET" and template in bodies and rng.random() < 0.6:
                        body = json.dumps(mutated(bodies[template], rng)).encode()
                    elif method != "GET":
                        if rng.random() < 0.4:
                            body = rng.choice(RAW_BODIES)
                        else:
                            doc = {rng.choice(MEMBERS): rng.choice(VALUES) for _ in range(rng.randint(1, 4))}
                            body = json.dumps(doc).encode()
                    status, kind, data = conn.request(method, path, body, token)
                    answered += 1
                    where = "%s %s %r -> %d %r" % (method, path[:200], (body or b"")[:200], status,
                                                  data[:300])
                    self.assertFalse(500 <= status < 600 and status != 503, where)
                    if status >= 400:
                        self.assertTrue(kind.startswith("application/json"), where)
                        error = json.loads(data)["error"]
                        self.assertIsInstance(error["code"], str, where)
                        self.assertTrue(error["code"] and error["message"], where)
        conn.close()
        self.assertGreater(answered, 1000)
        self.assertEqual(s.call("GET", "/healthz")[0], 200)
        status, verify, _ = s.call("GET", "/api/v1/audit/verify", token=ADMIN_TOKEN)
        self.assertTrue(verify["ok"], verify)
        s.stop()  # a clean exit, or this fails


STREAM_TOPICS = ["tickets", "ticket:T-000001", "inbox", "report:by_channel", "report:csat",
                 "dashboard:service_monitor", "ticket:", "report:", "dashboard:nope", "工单", ""]


def stream_messages(rng):
    """What a broken or hostile client sends on the stream: text that is not JSON, JSON of every
    shape, subscribe messages with one member gone wrong."""
    raw = [b"", b"null", b"[]", b"{}", b"{", b'"subscribe"', b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
           b'{"op":' * 2000 + b"1" + b"}" * 2000, b"x" * 200000]
    if rng.random() < 0.3:
        return rng.choice(raw)
    message = {"op": rng.choice(["subscribe", "unsubscribe", "ping", "publish", "", None]),
               "topic": rng.choice(STREAM_TOPICS)}
    if rng.random() < 0.5:
        message["from"] = rng.choice([0, 1, -1, 2 ** 64, 1.5, "0", None, [], 10 ** 9])
    if rng.random() < 0.3:
        message["tz"] = rng.choice(["Asia/Shanghai", "Mars/Olympus", "", 8, None])
    if rng.random() < 0.5:
        message = mutated(message, rng)
    return json.dumps(message).encode()


def utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class StreamGarbage(unittest.TestCase):
    def test_garbage_on_the_stream_is_answered_with_errors_and_only_protocol_breaches_close(self):
        s, li = a_server_with_a_ticket(self)
        url = s.base.replace("http", "ws") + "/api/v1/stream?token=" + li
        rng = random.Random(20261203)
        ws, closes = None, 0
        for n in range(300):
            if ws is None:
                ws = websocket.create_connection(url, timeout=30)
            message = stream_messages(rng)
            opcode = websocket.ABNF.OPCODE_TEXT if rng.random() < 0.9 else websocket.ABNF.OPCODE_BINARY
            try:
                ws.send(message, opcode=opcode)
                # A marker only this round's answer names (a garbage ping would answer a pong too).
                marker = "ticket:T-9%06d" % n
                ws.send(json.dumps({"op": "unsubscribe", "topic": marker}))
            except ConnectionError:  # closed while a large message was still being sent
                pass
            closed = self.answers_up_to_the_marker(ws, message, marker)
            if closed is not None:
                # Only a breach of the protocol closes: text that is not UTF-8 (1007) or a
                # message over the server's 64 KB (1009); anything else is answered.
                self.assertIn(closed[0], (1007, 1009), (closed, message[:200]))
                self.assertTrue(len(message) > 64 * 1024 if closed[0] == 1009 else not utf8(message),
                                (closed, message[:200]))
                if closed[0] == 1009:  # Beast's own 1007 says nothing; this one says why
                    self.assertEqual(closed[1], "a message may be at most 65536 bytes")
                ws.close()
                ws = None
                closes += 1
        if ws is not None:
            ws.close()
        self.assertLess(closes, 100)  # most garbage is answered, not hung up on
        ws = websocket.create_connection(url, timeout=30)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": 0}))
        self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
        ws.close()
        self.assertEqual(s.call("GET", "/healthz")[0], 200)
        s.stop()

    def answers_up_to_the_marker(self, ws, message, marker):
        """Reads what the server sends after a message: errors in API.md's form, or what a
        subscription sends, up to the marker's unsubscription; or a close, whose code and reason
        it returns."""
        text = b""
        while True:
            try:
                frame = ws.recv_frame()  # not recv(): it would answer a close, into a closed socket
            except (websocket.WebSocketConnectionClosedException, ConnectionError) as e:
                return (None, repr(e))
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
                return (code, frame.data[2:].decode("utf-8", "replace"))
            if frame.opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_CONT):
                continue
            text += frame.data  # a long message comes in several frames
            if not frame.fin:
                continue
            answer, text = json.loads(text), b""
            if answer == {"op": "unsubscribed", "topic": marker}:
                return None
            if "error" in answer:
                self.assertTrue(answer["error"]["code"] and answer["error"]["message"], (message[:200], answer))
            else:
                self.assertTrue("topic" in answer or answer.get("op") == "pong",
                                (message[:200], answer))


# Requests broken below JSON: the request line, the headers, the framing of the body.
BROKEN_REQUESTS = [
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /api/v1/me HTTP/9.9\r\nHost: x\r\n\r\n",
    b"G\x00T /api/v1/me HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-A\x00: b\r\n\r\n",
    b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffff\r\nabc\r\n",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /%%%%% HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/tickets?limit=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://evil.example/api/v1/me HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    bytes(range(256)) * 4,
]


# RFC 9112: 400 without exactly one Host (3.2), or when the body's length cannot be known (6.3);
# 501 for a transfer coding the server does not decode (6.1).
EXPECTED_ANSWERS = {
    b"GET / HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n": b"HTTP/1.1 400 ",
    b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n":
        b"HTTP/1.1 501 ",
}

# A body the parser cannot delimit, holding a whole request: served, it would be a request the
# client never made (a proxy that reads Transfer-Encoding otherwise forwards it as the body).
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
UNDELIMITED_BODIES = [
    (b"gzip", b"HTTP/1.1 400 "),
    (b"identity", b"HTTP/1.1 400 "),
    (b"chunked, chunked", b"HTTP/1.1 400 "),
    (b"chunked, gzip", b"HTTP/1.1 400 "),
    (b"gzip, chunked", b"HTTP/1.1 501 "),
    (b"chunked", b"HTTP/1.1 400 "),  # in HTTP/1.0, which has no Transfer-Encoding
]


def answer_to(host, port, request, half_close=False):
    """Everything the server sends back to raw `request` bytes on a new connection, until it
    closes it (after the client's end of it, with half_close)."""
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(request)
        if half_close:
            c.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := c.recv(65536):
            answer += chunk
        return answer


class BrokenHttp(unittest.TestCase):
    def test_a_websocket_handshake_refused_is_answered_in_the_error_form(self):
        s = Server(demo=False, extra_args=["--rate-limit", "0"]).start()
        try:
            host, port = s.base[len("http://"):].rsplit(":", 1)
            upgrade = (b"GET /api/v1/stream?token=" + ADMIN_TOKEN.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                       b"Upgrade: websocket\r\nConnection: Upgrade\r\n")
            key = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            for headers, status, code in [
                (key + b"Sec-WebSocket-Version: 8\r\n", b"HTTP/1.1 426 ", "upgrade_required"),
                (b"Sec-WebSocket-Version: 13\r\n", b"HTTP/1.1 400 ", "bad_request"),  # no key
                (key, b"HTTP/1.1 400 ", "bad_request"),  # no version
                (b"Sec-WebSocket-Key: " + b"A" * 200 + b"\r\nSec-WebSocket-Version: 13\r\n",
                 b"HTTP/1.1 400 ", "bad_request"),
            ]:
                answer = answer_to(host, port, upgrade + headers + b"\r\n")
                self.assertTrue(answer.startswith(status), (headers, answer[:300]))
                head, _, body = answer.partition(b"\r\n\r\n")
                self.assertIn(b"Content-Type: application/json", head, (headers, head))
                error = json.loads(body)["error"]
                self.assertEqual(error["code"], code, (headers, body))
                self.assertIn("Sec-WebSocket-", error["message"], (headers, body))
                if code == "upgrade_required":  # naming the version to use, as RFC 6455 4.4 asks
                    self.assertIn(b"Sec-WebSocket-Version: 13", head, head)
            s.stop()
        finally:
            s.cleanup()

    def test_a_body_in_a_transfer_coding_not_read_is_refused_and_nothing_in_it_served(self):
        s = Server(demo=False, extra_args=["--rate-limit", "0"]).start()
        try:
            host, port = s.base[len("http://"):].rsplit(":", 1)
            for coding, status in UNDELIMITED_BODIES:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED) if b"chunked" in coding else SMUGGLED
                version = b"1.0\r\nConnection: keep-alive" if coding == b"chunked" else b"1.1"
                request = (b"POST /api/v1/sessions HTTP/" + version + b"\r\nHost: x\r\nTransfer-Encoding: " +
                           coding + b"\r\n\r\n" + body)
                # Keep-alive, the write side left open: the server closes after its one answer.
                answer = answer_to(host, port, request)
                self.assertTrue(answer.startswith(status), (coding, answer[:300]))
                self.assertEqual(answer.count(b"HTTP/1.1 "), 1, (coding, answer))
                head, _, error = answer.partition(b"\r\n\r\n")
                self.assertIn(b"Connection: close", head, (coding, head))
                self.assertIn("Transfer-Encoding" if status.endswith(b"400 ") else "not supported",
                              json.loads(error)["error"]["message"], coding)
            s.stop()
        finally:
            s.cleanup()

    def test_broken_requests_get_a_4xx_or_a_close_and_others_are_served(self):
        s = Server(demo=False, extra_args=["--rate-limit", "0", "--read-timeout", "2"]).start()
        try:
            host, port = s.base[len("http://"):].rsplit(":", 1)
            rng = random.Random(20261203)
            requests = BROKEN_REQUESTS + [bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
                                          for _ in range(40)]
            for request in requests:
                expected = EXPECTED_ANSWERS.get(request)
                try:
                    answer = answer_to(host, port, request, half_close=True)
                except ConnectionError:
                    answer = b""  # refused and closed before all of it was sent
                if expected:
                    self.assertTrue(answer.startswith(expected), (request, answer[:300]))
                if answer:
                    status_line = answer.split(b"\r\n", 1)[0]
                    allowed = rb"^HTTP/1\.1 501 " if expected == b"HTTP/1.1 501 " else rb"^HTTP/1\.[01] [1-4]\d\d "
                    self.assertRegex(status_line, allowed, (request[:120], answer[:300]))
                    if b" 4" in status_line or b" 5" in status_line:
                        head, _, body = answer.partition(b"\r\n\r\n")
                        self.assertIn(b"application/json", head, (request[:120], answer[:300]))
                        self.assertTrue(json.loads(body)["error"]["code"], (request[:120], answer[:300]))
                self.assertEqual(s.call("GET", "/healthz")[0], 200, request[:120])
            s.stop()
        finally:
            s.cleanup()


class Connection:
    """One keep-alive connection, opened again whenever the server closed it (as it may after a
    malformed request)."""

    def __init__(self, server):
        self.host = server.base[len("http://"):]
        self.conn = None

    def request(self, method, path, body, token):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, timeout=30)
            try:
                headers = {"Authorization": "Bearer " + token}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, resp.getheader("Content-Type", ""), data
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


if __name__ == "__main__":
    unittest.main()
