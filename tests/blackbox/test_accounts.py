"""Accounts against the real binary: an administrator changes a user's roles and contact details,
resets a password or disables a user who left; users sign out and change their own password.
Every token that should stop working stops at once, and stays stopped after a restart."""
import datetime
import json
import unittest

import websocket  # Debian's python3-websocket

from ticketd_server import ADMIN_TOKEN, Server, close_frame
from test_api import SUBMISSION, wait_for


class Accounts(unittest.TestCase):
    def setUp(self):
        self.s = Server()
        self.s.start()
        self.addCleanup(self.s.cleanup)

    def call(self, method, path, body=None, token=ADMIN_TOKEN):
        status, r, _ = self.s.call(method, "/api/v1" + path, body, token=token)
        return status, r

    def sign_in(self, user, password=None):
        status, r, _ = self.s.call("POST", "/api/v1/sessions", {"user": user, "password": password or "demo-" + user})
        return status, r

    def assert_error(self, status, r, expected, code, field=None):
        self.assertEqual(status, expected, r)
        self.assertEqual(r["error"]["code"], code, r)
        if field:
            self.assertEqual(r["error"].get("field"), field, r)

    def submit(self, token):
        status, r = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                   "fields": SUBMISSION}, token=token)
        self.assertEqual(status, 201, r)
        return r["id"]

    def test_roles_and_details_change_at_once(self):
        li = self.s.login("li")
        tid = self.submit(li)
        status, r = self.call("POST", "/tickets/%s/actions" % tid,
                              {"action": "approve", "fields": {"complexity": "简单"}}, token=li)
        self.assert_error(status, r, 403, "forbidden")
        status, user = self.call("PATCH", "/users/li", {"roles": ["cs_agent", "cs_supervisor"],
                                                       "phone": "+86 139 0000 0002"})
        self.assertEqual(status, 200, user)
        self.assertEqual((user["roles"], user["phone"], user["disabled"]),
                         (["cs_agent", "cs_supervisor"], "+86 139 0000 0002", False))
        # The same session now acts as a supervisor.
        status, r = self.call("POST", "/tickets/%s/actions" % tid,
                              {"action": "approve", "fields": {"complexity": "简单"}}, token=li)
        self.assertEqual(status, 200, r)
        # The same change again writes nothing.
        before = self.s.call("GET", "/healthz")[1]["position"]
        status, again = self.call("PATCH", "/users/li", {"roles": ["cs_agent", "cs_supervisor"]})
        self.assertEqual((status, again), (200, user))
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)

    def test_a_user_who_left_is_disabled_everywhere(self):
        zhao = self.s.login("zhao")
        self.assertEqual(self.call("GET", "/me", token=zhao)[0], 200)
        status, user = self.call("PATCH", "/users/zhao", {"disabled": True})
        self.assertEqual((status, user["disabled"]), (200, True), user)
        self.assert_error(*self.call("GET", "/me", token=zhao), 401, "unauthorized")
        self.assert_error(*self.sign_in("zhao"), 403, "forbidden")
        self.assert_error(*self.sign_in("zhao", "wrong password"), 401, "unauthorized")  # says nothing more
        # Nobody hands a ticket to zhao any more.
        tid = self.submit(self.s.login("li"))
        self.assertEqual(self.call("POST", "/tickets/%s/actions" % tid,
                                   {"action": "approve", "fields": {"complexity": "复杂"}},
                                   token=self.s.login("zhang"))[0], 200)
        status, r = self.call("POST", "/tickets/%s/actions" % tid,
                              {"action": "approve", "fields": {"engineer": "zhao"}}, token=self.s.login("wang"))
        self.assert_error(status, r, 422, "invalid_value", "engineer")
        self.assertIn("no active user", r["error"]["message"])
        # Still disabled after a restart (snapshot and log); enabled again, zhao signs in anew.
        self.s.stop()
        self.s.start()
        self.assert_error(*self.call("GET", "/me", token=zhao), 401, "unauthorized")
        self.assert_error(*self.sign_in("zhao"), 403, "forbidden")
        self.assertEqual(self.call("PATCH", "/users/zhao", {"disabled": False})[0], 200)
        self.assert_error(*self.call("GET", "/me", token=zhao), 401, "unauthorized")  # ended for good
        self.assertEqual(self.sign_in("zhao")[0], 201)

    def test_tickets_left_waiting_on_nobody_are_named_to_the_administrator(self):
        li, zhang, wang = (self.s.login(u) for u in ("li", "zhang", "wang"))
        at_engineer, at_accept = self.submit(li), self.submit(li)
        self.call("POST", "/tickets/%s/actions" % at_engineer, {"action": "approve", "fields": {"complexity": "复杂"}},
                  token=zhang)
        self.call("POST", "/tickets/%s/actions" % at_engineer, {"action": "approve", "fields": {"engineer": "zhao"}},
                  token=wang)
        # zhao leaves: the ticket at 工程师处理 waits on him alone.
        status, user = self.call("PATCH", "/users/zhao", {"disabled": True})
        self.assertEqual((status, user["stranded_tickets"]), (200, {"count": 1, "ids": [at_engineer]}), user)
        status, user = self.call("GET", "/users/zhao")
        self.assertEqual(user["stranded_tickets"], {"count": 1, "ids": [at_engineer]}, user)
        self.assertNotIn("stranded_tickets", self.call("GET", "/users/zhao", token=self.s.login("li"))[1])
        # 张三, the only 客服主管, moves to another team: 工单受理's tickets wait on no one.
        status, user = self.call("PATCH", "/users/zhang", {"roles": ["cs_agent"]})
        self.assertEqual(user["stranded_tickets"], {"count": 1, "ids": [at_accept]}, user)
        # All of them at any time, for an administrator's list (and the others, open or closed).
        listed = lambda query: [t["id"] for t in self.call("GET", "/tickets?" + query)[1]["items"]]
        self.assertEqual(sorted(listed("stranded=true")), sorted([at_engineer, at_accept]))
        self.assertEqual([t for t in listed("stranded=false") if t in (at_engineer, at_accept)], [])
        self.assert_error(*self.call("GET", "/tickets?stranded=1"), 400, "bad_parameter", "stranded")
        # Handed on, they are nobody's problem any more.
        self.assertEqual(self.call("POST", "/tickets/%s/actions" % at_engineer,
                                   {"action": "transfer", "to": "qian"})[0], 200)
        self.assertNotIn("stranded_tickets", self.call("GET", "/users/zhao")[1])
        self.assertEqual(listed("stranded=true"), [at_accept])
        status, user = self.call("PATCH", "/users/sun", {"roles": ["dept_manager", "cs_supervisor"]})
        self.assertNotIn("stranded_tickets", user)
        self.assertNotIn("stranded_tickets", self.call("PATCH", "/users/zhang", {"roles": ["cs_agent"]})[1])
        # Made an auditor too, qian may act on nothing: what waits on him alone is named as well.
        status, user = self.call("PATCH", "/users/qian", {"roles": ["engineer", "auditor"]})
        self.assertEqual((status, user.get("stranded_tickets")), (200, {"count": 1, "ids": [at_engineer]}), user)

    def test_todos_left_for_nobody_are_named_to_the_administrator(self):
        rule = {"name": "经理待办", "form": "service_ticket", "trigger": {"type": "created"}, "enabled": True,
                "actions": [{"type": "notify", "to": {"user": "sun"}, "channel": "todo", "template": "请关注"},
                            {"type": "notify", "to": {"role": "engineer"}, "channel": "todo", "template": "备件"}]}
        self.assertEqual(self.call("PUT", "/rules/manager_todo", rule)[0], 201)
        tid = self.submit(self.s.login("li"))
        todos = {t["for"].get("user") or t["for"].get("role"): t["id"]
                 for t in self.call("GET", "/tickets/" + tid)[1]["you"]["todos"]}
        self.assertEqual(sorted(todos), ["engineer", "sun"])
        listed = lambda query: [t["id"] for t in self.call("GET", "/tickets?" + query)[1]["items"]]
        # 孙经理 leaves: the ticket still waits on 客服主管 at its node, but his to-do on no one.
        status, user = self.call("PATCH", "/users/sun", {"disabled": True})
        self.assertEqual((status, user.get("stranded_tickets")), (200, {"count": 1, "ids": [tid]}), user)
        self.assertEqual(listed("stranded=true"), [tid])
        self.assertEqual(self.call("POST", "/tickets/%s/todos/%d/done" % (tid, todos["sun"]))[0], 200)
        self.assertNotIn("stranded_tickets", self.call("GET", "/users/sun")[1])
        self.assertEqual(listed("stranded=true"), [])
        # The role's to-do, once its last active member is gone, on a closed ticket too.
        self.assertEqual(self.call("POST", "/tickets/%s/actions" % tid, {"action": "reject"})[0], 200)
        self.assertEqual(self.call("GET", "/tickets/" + tid)[1]["state"], "closed")
        self.assertNotIn("stranded_tickets", self.call("PATCH", "/users/zhao", {"disabled": True})[1])
        status, user = self.call("PATCH", "/users/qian", {"roles": ["cs_agent"]})
        self.assertEqual((status, user.get("stranded_tickets")), (200, {"count": 1, "ids": [tid]}), user)
        self.assertEqual(listed("stranded=true"), [tid])
        self.assertEqual(self.call("PATCH", "/users/zhao", {"disabled": False})[0], 200)
        self.assertEqual(listed("stranded=true"), [])

    def test_passwords_reset_by_an_administrator_or_changed_by_their_owner(self):
        li = self.s.login("li")
        status, r = self.call("PATCH", "/users/li", {"password": "short"})
        self.assert_error(status, r, 422, "out_of_range", "password")
        self.assertEqual(self.call("PATCH", "/users/li", {"password": "new-secret-1"})[0], 200)
        self.assert_error(*self.call("GET", "/me", token=li), 401, "unauthorized")  # signed out
        self.assert_error(*self.sign_in("li"), 401, "unauthorized")
        status, r = self.sign_in("li", "new-secret-1")
        self.assertEqual(status, 201, r)
        phone, desk = r["token"], self.sign_in("li", "new-secret-1")[1]["token"]

        status, r = self.call("POST", "/me/password", {"current": "wrong", "new": "x" * 12}, token=phone)
        self.assert_error(status, r, 403, "forbidden", "current")
        status, r = self.call("POST", "/me/password", {"current": "new-secret-1", "neu": "x"}, token=phone)
        self.assert_error(status, r, 422, "unknown_field", "neu")
        status, r = self.call("POST", "/me/password", {"current": "new-secret-1", "new": "own-secret-2"},
                              token=phone)
        self.assertEqual(status, 200, r)
        self.assertEqual(self.call("GET", "/me", token=phone)[0], 200)  # this one stays signed in
        self.assert_error(*self.call("GET", "/me", token=desk), 401, "unauthorized")  # the others end
        self.assertEqual(self.sign_in("li", "own-secret-2")[0], 201)
        self.assert_error(*self.call("POST", "/me/password", {"current": "x", "new": "y" * 9}), 422,
                          "invalid_value")  # the administrator token has no password

        # The auditor reads every account's events, but no password hash to guess from offline.
        audit = self.s.login("audit")
        status, feed = self.call("GET", "/events?from=0&limit=500", token=audit)
        self.assertEqual(status, 200, feed)
        accounts = [e for e in feed["items"] if e["type"] in ("UserCreated", "PasswordChanged")]
        self.assertEqual(sum(e["type"] == "PasswordChanged" and e["data"]["id"] == "li" for e in accounts), 2)
        self.assertEqual({e["data"]["password_hash"] for e in accounts}, {"(withheld)"})
        self.assertNotIn("$argon2", json.dumps(feed))
        status, r = self.call("GET", "/audit/verify", token=audit)
        self.assertEqual((status, r["ok"]), (200, True), r)

    def test_guessing_passwords_is_slowed_down(self):
        for _ in range(5):
            self.assert_error(*self.sign_in("li", "guess"), 401, "unauthorized")
        status, r, headers = self.s.call("POST", "/api/v1/sessions", {"user": "li", "password": "demo-li"})
        self.assertEqual((status, r["error"]["code"]), (429, "rate_limited"), r)
        self.assertTrue(0 < int(headers["Retry-After"]) <= 30, headers)
        self.assertEqual(self.sign_in("zhang")[0], 201)  # another name is not held up
        for _ in range(5):  # a name that does not exist is treated alike
            self.assert_error(*self.sign_in("nobody", "guess"), 401, "unauthorized")
        self.assert_error(*self.sign_in("nobody", "guess"), 429, "rate_limited")

    def test_signing_out_ends_only_that_session(self):
        one, two = self.s.login("li"), self.s.login("li")
        status, r = self.call("DELETE", "/sessions", token=one)
        self.assertEqual((status, r), (200, {"user": "li", "signed_out": True}))
        self.assert_error(*self.call("GET", "/me", token=one), 401, "unauthorized")
        self.assertEqual(self.call("GET", "/me", token=two)[0], 200)
        self.s.stop()
        self.s.start()
        self.assert_error(*self.call("GET", "/me", token=one), 401, "unauthorized")
        self.assertEqual(self.call("GET", "/me", token=two)[0], 200)
        self.assert_error(*self.call("DELETE", "/sessions"), 422, "invalid_value")

    def test_a_new_user_is_answered_as_read_and_checked_as_notifications_need(self):
        user = {"id": "ma", "name": "马工", "roles": ["engineer"], "password": "pw-ma-12345",
                "phone": "+86 138 0000 0009", "email": "ma@example.com"}
        before = self.s.call("GET", "/healthz")[1]["position"]
        for member, value, code in [("name", "马\n工", "invalid_value"), ("phone", "call me", "invalid_value"),
                                    ("email", "ma at example", "invalid_value"),
                                    ("roles", ["customer"], "invalid_value"),  # the portal's
                                    ("emial", "ma@example.com", "unknown_field")]:
            status, r = self.call("POST", "/users", {**user, member: value})
            self.assert_error(status, r, 422, code, member)
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)  # nothing written
        # The version and ETag are those GET gives, so a PATCH can name them in If-Match at once.
        status, created, h = self.s.call("POST", "/api/v1/users", user, token=ADMIN_TOKEN)
        self.assertEqual((status, created["version"], h.get("ETag")), (201, 1, '"1"'), created)
        self.assertEqual(created, self.call("GET", "/users/ma")[1])
        status, r, h = self.s.call("PATCH", "/api/v1/users/ma", {"email": "ma.gong@example.com"},
                                   token=ADMIN_TOKEN, headers={"If-Match": h["ETag"]})
        self.assertEqual((status, r["version"], h.get("ETag")), (200, 2, '"2"'), r)
        status, r = self.call("PATCH", "/users/ma", {"phone": "138"})
        self.assert_error(status, r, 422, "invalid_value", "phone")
        status, r = self.call("PATCH", "/users/ma", {"phone": ""})  # none
        self.assertEqual((status, r["phone"]), (200, ""), r)

    def test_two_administrators_editing_one_user_do_not_overwrite_each_other(self):
        status, li, h = self.s.call("GET", "/api/v1/users/li", token=ADMIN_TOKEN)
        self.assertEqual((status, h["ETag"]), (200, '"%d"' % li["version"]), li)
        first = li["version"]
        status, r, h = self.s.call("PATCH", "/api/v1/users/li", {"phone": "+86 139 0000 0003"},
                                   token=ADMIN_TOKEN, headers={"If-Match": str(first)})
        self.assertEqual((status, r["version"], h["ETag"]), (200, first + 1, '"%d"' % (first + 1)), r)
        # The other administrator still holds the first version: refused, nothing written.
        before = self.s.call("GET", "/healthz")[1]["position"]
        status, r, _ = self.s.call("PATCH", "/api/v1/users/li", {"name": "李四 (二)"},
                                   token=ADMIN_TOKEN, headers={"If-Match": '"%d"' % first})
        self.assertEqual((status, r["error"]["code"], r["error"]["current_version"]),
                         (409, "conflict", first + 1), r)
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        status, r, _ = self.s.call("PATCH", "/api/v1/users/li", {"name": "李四 (二)"},
                                   token=ADMIN_TOKEN, headers={"If-Match": '"%d"' % (first + 1)})
        self.assertEqual((status, r["name"], r["version"]), (200, "李四 (二)", first + 2), r)
        status, r, _ = self.s.call("PATCH", "/api/v1/users/li", {"name": "x"}, token=ADMIN_TOKEN,
                                   headers={"If-Match": "soon"})
        self.assert_error(status, r, 400, "bad_request")
        # "*" asks for no version (RFC 9110): the user exists, so the change is made.
        status, r, _ = self.s.call("PATCH", "/api/v1/users/li", {"name": "李四"}, token=ADMIN_TOKEN,
                                   headers={"If-Match": "*"})
        self.assertEqual((status, r["name"], r["version"]), (200, "李四", first + 3), r)
        status, r, _ = self.s.call("PATCH", "/api/v1/users/nobody", {"name": "x"}, token=ADMIN_TOKEN,
                                   headers={"If-Match": "*"})
        self.assert_error(status, r, 404, "not_found")
        # A password changed by its owner is a version too.
        status, _ = self.call("POST", "/me/password", {"current": "demo-li", "new": "new-pass-li"},
                              token=self.s.login("li"))
        self.assertEqual(status, 200)
        self.assertEqual(self.call("GET", "/users/li")[1]["version"], first + 4)
        self.s.stop()  # the snapshot brings the version back as the log has it
        self.s.start()
        self.assertEqual(self.call("GET", "/users/li")[1]["version"], first + 4)

    def test_a_user_sees_where_they_are_signed_in_and_ends_sessions(self):
        first, second = self.s.login("li"), self.s.login("li")
        status, r = self.call("GET", "/users/li/sessions", token=second)
        self.assertEqual(status, 200, r)
        self.assertEqual(len(r["items"]), 2, r)
        newest, older = r["items"]
        self.assertEqual((newest["current"], older["current"]), (True, False))  # newest first
        self.assertEqual(newest["client"], "127.0.0.1")
        self.assertGreaterEqual(newest["started_at"], older["started_at"])
        self.assertTrue(newest["expires_at"] > newest["started_at"])
        self.assertEqual(len(newest["id"]), 16)
        # Pages, as every list.
        status, page = self.call("GET", "/users/li/sessions?limit=1", token=second)
        self.assertEqual([i["id"] for i in page["items"]], [newest["id"]])
        status, rest = self.call("GET", "/users/li/sessions?limit=1&cursor=" + page["next_cursor"], token=second)
        self.assertEqual(([i["id"] for i in rest["items"]], rest["next_cursor"]), ([older["id"]], None))
        # Others' sessions are not everyone's to see or end.
        zhang = self.s.login("zhang")
        self.assert_error(*self.call("GET", "/users/li/sessions", token=zhang), 403, "forbidden")
        self.assert_error(*self.call("DELETE", "/users/li/sessions", token=zhang), 403, "forbidden")
        self.assert_error(*self.call("DELETE", "/users/li/sessions/0123456789abcdef", token=second),
                          404, "not_found")
        self.assert_error(*self.call("GET", "/users/nobody/sessions"), 404, "not_found")

        # li ends the older session; it stops at once, the one used goes on.
        status, r = self.call("DELETE", "/users/li/sessions/" + older["id"], token=second)
        self.assertEqual((status, r["ended"]), (200, 1), r)
        self.assertEqual(self.call("GET", "/me", token=first)[0], 401)
        self.assertEqual(self.call("GET", "/me", token=second)[0], 200)
        # "Sign out everywhere else", then an administrator ends the rest.
        third = self.s.login("li")
        status, r = self.call("DELETE", "/users/li/sessions", token=second)
        self.assertEqual((status, r["ended"]), (200, 1), r)
        self.assertEqual(self.call("GET", "/me", token=third)[0], 401)
        self.assertEqual(self.call("GET", "/me", token=second)[0], 200)
        before = self.s.call("GET", "/healthz")[1]["position"]
        status, r = self.call("DELETE", "/users/li/sessions", token=second)
        self.assertEqual((status, r["ended"]), (200, 0), r)  # nothing else to end: nothing written
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        status, r = self.call("DELETE", "/users/li/sessions")
        self.assertEqual((status, r["ended"]), (200, 1), r)
        self.assertEqual(self.call("GET", "/me", token=second)[0], 401)
        # The history says who signed in from where, and who ended which session.
        status, events = self.call("GET", "/events?from=0&limit=500")
        li_events = [e for e in events["items"] if e["stream"] == "sessions-li"]
        self.assertEqual(li_events[0]["data"]["client"], "127.0.0.1")
        self.assertEqual(li_events[-1]["type"], "SessionEnded")
        self.assertEqual(li_events[-1]["actor"], "admin")
        # Where a session was started from outlives a restart (the snapshot keeps it).
        fourth = self.s.login("li")
        self.s.stop()
        self.s.start()
        status, r = self.call("GET", "/users/li/sessions", token=fourth)
        self.assertEqual([(i["current"], i["client"]) for i in r["items"]], [(True, "127.0.0.1")])

    def test_who_may_see_and_change_accounts(self):
        li = self.s.login("li")
        self.assert_error(*self.call("PATCH", "/users/zhang", {"roles": []}, token=li), 403, "forbidden")
        self.assert_error(*self.call("GET", "/users/zhang", token=li), 403, "forbidden")
        status, me = self.call("GET", "/users/li", token=li)
        self.assertEqual((status, me["id"]), (200, "li"))
        self.assertEqual(self.call("GET", "/users/zhang", token=self.s.login("audit"))[0], 200)
        self.assert_error(*self.call("GET", "/users/nobody"), 404, "not_found")
        self.assert_error(*self.call("PATCH", "/users/nobody", {"name": "x"}), 404, "not_found")
        self.assert_error(*self.call("PATCH", "/users/li", {"nmae": "x"}), 422, "unknown_field", "nmae")
        self.assert_error(*self.call("PATCH", "/users/li", {"disabled": "yes"}), 422, "wrong_type", "disabled")
        self.assert_error(*self.call("PATCH", "/users/li", {"roles": "cs_agent"}), 422, "wrong_type", "roles")
        self.assert_error(*self.call("PATCH", "/users/li", {"name": ""}), 422, "required", "name")
        status, users = self.call("GET", "/users")
        self.assertTrue(all(u["disabled"] is False for u in users["items"]))

    def test_staff_see_a_directory_to_pick_people_from(self):
        self.assertEqual(self.call("PATCH", "/users/zhao", {"disabled": True})[0], 200)
        wang = self.s.login("wang")
        status, engineers = self.call("GET", "/users?role=engineer", token=wang)
        self.assertEqual(status, 200, engineers)
        # Whom the technical supervisor can dispatch to: active engineers, no contact details.
        self.assertEqual(engineers["items"], [{"id": "qian", "name": "钱七", "roles": ["engineer"]}])
        _, everyone = self.call("GET", "/users?role=engineer")  # an administrator sees all of it
        self.assertEqual([(u["id"], u["disabled"], u["phone"] != "") for u in everyone["items"]],
                         [("qian", False, True), ("zhao", True, True)])
        status, page = self.call("GET", "/users?limit=2", token=wang)
        self.assertEqual((status, len(page["items"])), (200, 2))
        self.assertTrue(page["next_cursor"])

    def subscribe(self, token):
        ws = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" + token,
                                         timeout=30)
        self.addCleanup(ws.close)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
        return ws

    def test_an_open_stream_ends_with_its_session_or_when_the_account_changes(self):
        disabled, promoted, kept = (self.subscribe(self.s.login(u)) for u in ("zhao", "li", "wang"))
        self.assertEqual(self.call("PATCH", "/users/zhao", {"disabled": True})[0], 200)
        self.assertEqual(self.call("PATCH", "/users/li", {"roles": ["cs_agent", "cs_supervisor"]})[0], 200)
        # At once, not at the streams' next periodic check: a ticket submitted now reaches neither.
        tid = self.submit(self.s.login("qian"))
        before_close = []
        self.assertEqual(close_frame(disabled, before_close), (1008, "the session has ended: sign in again"))
        self.assertEqual(close_frame(promoted, before_close), (1008, "the account has changed: connect again"))
        self.assertNotIn(tid, [m.get("ticket", {}).get("id") for m in before_close])
        # The others go on: wang hears the ticket.
        while True:
            m = json.loads(kept.recv())
            if m.get("ticket", {}).get("id") == tid:
                break


class SessionExpiry(unittest.TestCase):
    def test_a_session_counts_for_its_time_to_live_only(self):
        s = Server(extra_args=["--session-ttl", "2s"])
        s.start()
        self.addCleanup(s.cleanup)
        token = s.login("li")
        self.assertEqual(s.call("GET", "/api/v1/me", token=token)[0], 200)
        wait_for(lambda: s.call("GET", "/api/v1/me", token=token)[0] == 401, what="the session's expiry")
        status, r, _ = s.call("GET", "/api/v1/me", token=token)
        self.assertEqual(r["error"]["message"], "the session has expired: sign in again")
        self.assertEqual(s.call("GET", "/api/v1/me", token=s.login("li"))[0], 200)  # a new one counts
        self.assertEqual(s.call("GET", "/api/v1/me", token=ADMIN_TOKEN)[0], 200)  # never expires

    def test_a_longer_time_to_live_does_not_lengthen_sessions_already_started(self):
        s = Server(extra_args=["--session-ttl", "5s"])
        s.start()
        self.addCleanup(s.cleanup)
        token = s.login("li")
        mine = lambda t: s.call("GET", "/api/v1/users/li/sessions", token=t)[1]["items"]
        expires = mine(token)[0]["expires_at"]
        s.stop()
        s.extra_args = ["--session-ttl", "30d"]
        s.start()
        # Its sign-in recorded when it expires; the read model drops it at a sign-in after that.
        self.assertEqual([x["expires_at"] for x in mine(token)], [expires])
        wait_for(lambda: s.call("GET", "/api/v1/me", token=token)[0] == 401, what="the recorded expiry")
        later = s.login("li")
        [session] = mine(later)
        self.assertTrue(session["current"])
        when = lambda t: datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
        self.assertGreater(when(session["expires_at"]) - when(expires), datetime.timedelta(days=29))

    def test_a_bad_time_to_live_stops_the_start(self):
        s = Server(extra_args=["--session-ttl", "forever"])
        self.addCleanup(s.cleanup)
        with self.assertRaises(RuntimeError) as e:
            s.start()
        self.assertIn("--session-ttl must be a duration", str(e.exception))


class SignInLimitPerAddress(unittest.TestCase):
    """One password tried on many names: each name fails once, the address adds them up."""

    def sign_in(self, s, user, password, address=None):
        headers = {"X-Forwarded-For": address} if address else None
        status, r, h = s.call("POST", "/api/v1/sessions", {"user": user, "password": password},
                              headers=headers)
        return status, r, h

    def test_behind_a_trusted_proxy_the_forwarded_address_counts(self):
        s = Server(extra_args=["--sign-in-failures-per-address", "3", "--trusted-proxies", "127.0.0.1"])
        s.start()
        self.addCleanup(s.cleanup)
        for name in ("li", "zhang", "wang"):
            status, r, _ = self.sign_in(s, name, "123456", "203.0.113.5")
            self.assertEqual(status, 401, r)
        # Even the right password waits now, from that address; the answer names the address.
        status, r, h = self.sign_in(s, "zhao", "demo-zhao", "203.0.113.5")
        self.assertEqual(status, 429, r)
        self.assertEqual(r["error"]["code"], "rate_limited", r)
        self.assertIn("from this address", r["error"]["message"])
        self.assertEqual(h["Retry-After"], "30")
        # Another client behind the same proxy, and the names themselves, are not locked.
        status, r, _ = self.sign_in(s, "li", "demo-li", "198.51.100.7")
        self.assertEqual(status, 201, r)
        # The access log names the client, not the proxy.
        wait_for(lambda: any("client=203.0.113.5" in line for line in s.output), what="the access log")

    def test_from_any_other_peer_the_header_is_ignored(self):
        s = Server(extra_args=["--sign-in-failures-per-address", "3"])
        s.start()
        self.addCleanup(s.cleanup)
        for i, name in enumerate(("li", "zhang", "wang")):
            status, r, _ = self.sign_in(s, name, "123456", "203.0.113.%d" % i)  # forged, each new
            self.assertEqual(status, 401, r)
        status, r, _ = self.sign_in(s, "zhao", "demo-zhao", "198.51.100.7")
        self.assertEqual(status, 429, r)

    def test_bad_options_stop_the_start(self):
        for args, message in ((["--trusted-proxies", "proxy.example.com"], "is not an IPv4 or IPv6 address"),
                              (["--sign-in-failures-per-address", "-1"], "--sign-in-failures-per-address must")):
            s = Server(extra_args=args)
            self.addCleanup(s.cleanup)
            with self.assertRaises(RuntimeError) as e:
                s.start()
            self.assertIn(message, str(e.exception))


if __name__ == "__main__":
    unittest.main()
