"""Every route, fed garbage: bodies that are not JSON, JSON of the wrong shape, members of the wrong
type, hostile path segments and query values. API.md: every error is {"error":{"code","message"}}
and never a 500 for client input. The server stays up, its chain whole, and it stops cleanly."""
import copy
import http.client
import json
import os
import random
import sys
import unittest
import urllib.parse

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


class GarbageEverywhere(unittest.TestCase):
    def test_every_route_answers_garbage_with_a_clear_error(self):
        s = Server(extra_args=["--rate-limit", "0"]).start()
        try:
            li = s.login("li")
            status, _, _ = s.call("POST", "/api/v1/tickets", SUBMISSION, token=li)
            self.assertEqual(status, 201)
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
