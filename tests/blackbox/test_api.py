"""Black-box tests: the real ticketd over HTTP, playing API.md and the reference application."""
import csv
import io
import json
import os
import re
import datetime
import http.client
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import zlib
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import ADMIN_TOKEN, TICKETCTL, Server  # noqa: E402


SUBMISSION = {
    "customer_name": "华东精密机械有限公司",
    "customer_phone": "+86 138 1234 5678",
    "channel": "电话",
    "problem_type": "功能故障",
    "description": "打印机每打印第二页就卡纸,需要工程师上门检修。",
}


def one_pixel_png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


class ReferenceApp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Listings consider two tickets per hold of the read model's lock (1024 by default), so
        # every listing below resumes its scan many times, over an index's set and over all the
        # tickets, while the other tests' commands are applied between the steps; and only those
        # that consider two tickets at most are answered on their connection's thread.
        cls.s = Server(extra_args=["--scan-step", "2", "--quick-listing", "2"]).start()
        cls.tokens = {u: cls.s.login(u) for u in ["zhang", "li", "wang", "zhao", "qian", "sun", "audit"]}

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.s.cleanup()

    def call(self, method, path, body=None, user=None, **kw):
        token = ADMIN_TOKEN if user == "admin" else self.tokens.get(user)
        return self.s.call(method, "/api/v1" + path, body, token=token, **kw)

    def submit(self, user="li", fields=None, headers=None):
        status, body, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": fields or SUBMISSION},
                                    user=user, headers=headers)
        self.assertEqual(status, 201, body)
        return body

    def act(self, ticket, user, action, fields=None, expect=200, **extra):
        body = {"action": action, **extra}
        if fields:
            body["fields"] = fields
        status, resp, _ = self.call("POST", "/tickets/%s/actions" % ticket, body, user=user)
        self.assertEqual(status, expect, resp)
        return resp

    def assert_error(self, resp, status, expected_status, code, field=None):
        self.assertEqual(status, expected_status, resp)
        self.assertEqual(resp["error"]["code"], code, resp)
        self.assertTrue(resp["error"]["message"])
        if field:
            self.assertEqual(resp["error"].get("field"), field, resp)

    def test_simple_branch_through_the_portal(self):
        t = self.submit()
        tid, code = t["id"], t["portal_code"]
        self.assertEqual(t["ticket"]["node"]["name"], "工单受理")
        self.assertEqual(t["ticket"]["fields"]["status"], "待受理")
        self.assertGreater(t["position"], 0)
        # The to-do sits with the customer-service supervisor.
        _, inbox, _ = self.call("GET", "/inbox", user="zhang")
        self.assertIn(tid, [i["id"] for i in inbox["items"]])
        _, inbox, _ = self.call("GET", "/inbox", user="li")
        self.assertNotIn(tid, [i["id"] for i in inbox["items"]])

        # Confirmed before the work is done: the customer is told where the ticket is, in words.
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/confirm?code=%s" % (tid, code), {})
        self.assert_error(r, status, 422, "action_not_allowed")
        self.assertEqual(r["error"]["message"], "the ticket is not waiting for your confirmation: it is at 工单受理")
        r = self.act(tid, "zhang", "approve", {"complexity": "简单"}, comment="客服处理即可")
        self.assertEqual(r["ticket"]["node"]["id"], "cs_handle")
        self.assertIsNotNone(r["ticket"]["first_response_at"])
        r = self.act(tid, "li", "submit", {"solution": "已远程指导清理进纸辊。"})
        self.assertEqual(r["ticket"]["node"]["name"], "客户确认")

        status, portal, _ = self.s.call("GET", "/api/v1/portal/tickets/%s?code=%s" % (tid, code))
        self.assertEqual(status, 200, portal)
        self.assertEqual(portal["node"]["name"], "客户确认")
        self.assertEqual(portal["fields"]["solution"], "已远程指导清理进纸辊。")
        self.assertNotIn("customer_phone", portal["fields"])
        self.assertEqual([s["name"] for s in portal["timeline"]], ["工单受理", "客服处理", "客户确认"])
        # Rated once the fix is confirmed: before, a rating would count a service not yet given.
        self.assertEqual((portal["can_confirm"], portal["can_rate"], portal["can_comment"]), (True, False, True))
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/rating?code=%s" % (tid, code), {"score": 5})
        self.assert_error(r, status, 422, "action_not_allowed", "score")
        status, wrong, _ = self.s.call("GET", "/api/v1/portal/tickets/%s?code=nope" % tid)
        self.assert_error(wrong, status, 404, "not_found")
        status, wrong, _ = self.s.call("GET", "/api/v1/portal/tickets/T-999999?code=nope")
        self.assert_error(wrong, status, 404, "not_found")

        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/confirm?code=%s" % (tid, code),
                                   {"coment": "好了"})
        self.assert_error(r, status, 422, "unknown_field", "coment")  # not dropped unsaid
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/confirm?code=%s" % (tid, code), {})
        self.assertEqual(status, 200, r)
        self.assertEqual(r["ticket"]["state"], "closed")
        status, portal, _ = self.s.call("GET", "/api/v1/portal/tickets/%s?code=%s" % (tid, code))
        self.assertEqual((portal["can_confirm"], portal["can_rate"], portal["can_comment"]), (False, True, False))
        # A reply to a closed ticket would reach nobody: the customer is told to reopen it.
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/comments?code=%s" % (tid, code), {"text": "又坏了"})
        self.assert_error(r, status, 422, "ticket_closed")
        self.assertIn("reopen it, saying why, or contact us again", r["error"]["message"])
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/rating?code=%s" % (tid, code),
                                   {"score": 5, "commment": "很满意"})
        self.assert_error(r, status, 422, "unknown_field", "commment")
        status, r, _ = self.s.call("POST", "/api/v1/portal/tickets/%s/rating?code=%s" % (tid, code),
                                   {"score": 5, "comment": "很满意"})
        self.assertEqual(status, 201, r)
        _, view, _ = self.call("GET", "/tickets/" + tid, user="zhang")
        self.assertEqual(view["state"], "closed")
        self.assertEqual(view["fields"]["status"], "已关闭")
        self.assertEqual(view["rating"], 5)
        self.assertIsNotNone(view["closed_at"])

    def test_a_closed_ticket_is_reopened_in_the_portal_and_by_staff(self):
        s = Server().start()
        try:
            admin = lambda m, p, b=None, **kw: s.call(m, "/api/v1" + p, b, token=ADMIN_TOKEN, **kw)
            tokens = {u: s.login(u) for u in ("li", "zhang", "wang")}
            staff = lambda u, m, p, b=None: s.call(m, "/api/v1" + p, b, token=tokens[u])
            portal = lambda m, what="", b=None: s.call(m, "/api/v1/portal/tickets/%s%s?code=%s" % (tid, what, code), b)
            status, t, _ = staff("li", "POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                           "fields": SUBMISSION})
            self.assertEqual(status, 201, t)
            tid, code = t["id"], t["portal_code"]
            status, r, _ = portal("POST", "/reopen", {"reason": "x"})
            self.assert_error(r, status, 422, "action_not_allowed")  # open
            staff("zhang", "POST", "/tickets/%s/actions" % tid, {"action": "approve", "fields": {"complexity": "简单"}})
            staff("li", "POST", "/tickets/%s/actions" % tid, {"action": "submit", "fields": {"solution": "已远程指导。"}})
            self.assertEqual(portal("POST", "/confirm", {})[0], 200)
            self.assertEqual(portal("POST", "/rating", {"score": 5})[0], 201)
            fcr = lambda: staff("zhang", "GET", "/reports/first_contact_resolution")[1]
            self.assertEqual([fcr()[k] for k in ("closed", "first_contact", "reopened", "reopen_rate")], [1, 1, 0, 0])

            status, view, _ = portal("GET")
            self.assertEqual((view["can_reopen"], view["can_rate"]), (True, False))
            self.assertIn("reopen_until", view)
            for body, status_code, error, field in (({}, 422, "required", "reason"),
                                                    ({"reason": " "}, 422, "required", "reason"),
                                                    ({"reason": "x", "node": "dispatch"}, 422, "unknown_field", "node")):
                status, r, _ = portal("POST", "/reopen", body)
                self.assert_error(r, status, status_code, error, field)
            # 王五 acts at 技术派单, not where a reopened ticket goes first (工单受理).
            status, r, _ = staff("wang", "POST", "/tickets/%s/reopen" % tid, {"reason": "x"})
            self.assert_error(r, status, 403, "forbidden")
            status, r, _ = staff("li", "POST", "/tickets/%s/reopen" % tid, {"reason": "x", "node": "end"})
            self.assert_error(r, status, 422, "invalid_value", "node")

            status, r, _ = portal("POST", "/reopen", {"reason": "第二天又卡纸了"})
            self.assertEqual(status, 200, r)
            self.assertEqual((r["ticket"]["state"], r["ticket"]["node"]["id"], r["ticket"]["reopens"]),
                             ("open", "accept", 1))
            self.assertIsNone(r["ticket"]["closed_at"])
            _, inbox, _ = staff("zhang", "GET", "/inbox")
            self.assertIn(tid, [i["id"] for i in inbox["items"]])
            # The report's reopened tickets, one by one; and those never reopened.
            listed = lambda query: [i["id"] for i in staff("zhang", "GET", "/tickets?" + query)[1]["items"]]
            other = staff("li", "POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                     "fields": SUBMISSION})[1]["id"]
            self.assertEqual((listed("reopened=true"), listed("reopened=false")), ([tid], [other]))
            status, r, _ = staff("zhang", "GET", "/tickets?reopened=yes")
            self.assert_error(r, status, 400, "bad_parameter", "reopened")
            _, view, _ = staff("zhang", "GET", "/tickets/" + tid)
            self.assertEqual((view["fields"]["status"], view.get("rating")), ("待受理", None))
            status, view, _ = portal("GET")
            self.assertEqual((view["can_reopen"], view["can_comment"]), (False, True))
            self.assertEqual(view["conversation"][-1], {"time": view["conversation"][-1]["time"],
                                                        "from": "customer", "text": "第二天又卡纸了"})
            # The supervisor's to-do says why; the close no longer counts, and the next one is
            # not a first-contact resolution.
            status, hist, _ = admin("GET", "/tickets/%s/events" % tid)
            types = [e["type"] for e in hist["items"]]
            self.assertEqual(types[types.index("TicketReopened"):],
                             ["TicketReopened", "NodeEntered", "NotificationRequested", "FieldsChanged"])
            self.assertIn("第二天又卡纸了", hist["items"][types.index("TicketReopened") + 2]["data"]["text"])
            self.assertEqual([fcr()[k] for k in ("closed", "first_contact", "reopened")], [0, 0, 0])
            staff("zhang", "POST", "/tickets/%s/actions" % tid, {"action": "approve"})
            staff("li", "POST", "/tickets/%s/actions" % tid, {"action": "submit", "fields": {"solution": "更换进纸辊。"}})
            self.assertEqual(portal("POST", "/confirm", {})[0], 200)
            self.assertEqual([fcr()[k] for k in ("closed", "first_contact", "rate", "reopened", "reopen_rate")],
                             [1, 0, 0, 1, 1])
            _, daily, _ = staff("zhang", "GET", "/reports/first_contact_resolution?bucket=day")
            self.assertEqual([daily["rows"][0][k] for k in ("closed", "reopened", "reopen_rate")], [1, 1, 1])
            self.assertEqual(portal("POST", "/rating", {"score": 4})[0], 201)

            # A company that takes no reopens in the portal: staff still may, where they work.
            for days in (-1, 1.5, 367, "7"):
                status, r, _ = admin("PUT", "/settings", {"time_zone": "UTC", "reopen_days": days})
                self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
                self.assertIn("settings.reopen_days", r["error"]["message"])
            status, r, _ = admin("PUT", "/settings", {"time_zone": "UTC", "reopen_days": 0})
            self.assertEqual(status, 201, r)
            status, view, _ = portal("GET")
            self.assertEqual((view["can_reopen"], "reopen_until" in view), (False, False))
            status, r, _ = portal("POST", "/reopen", {"reason": "又坏了"})
            self.assert_error(r, status, 422, "ticket_closed")
            status, r, _ = staff("wang", "POST", "/tickets/%s/reopen" % tid, {"reason": "回访发现需上门", "node": "dispatch"})
            self.assertEqual((status, r["ticket"]["node"]["id"], r["ticket"]["reopens"]), (200, "dispatch", 2), r)
            self.assertEqual(r["ticket"]["fields"]["status"], "处理中")
        finally:
            s.cleanup()

    def test_complex_branch_with_reject_and_transfer(self):
        tid = self.submit()["id"]
        # "you": what the caller may do at the node now, for a client's buttons and inputs.
        you = lambda user: self.call("GET", "/tickets/" + tid, user=user)[1]["you"]
        # (The reference rule's 新工单 for 客服主管 is this node's work: it opens no to-do.)
        self.assertEqual(you("zhang"), {"actions": ["approve", "reject", "transfer"],
                                        "writable": ["complexity", "priority", "handler"],
                                        "required": ["complexity"], "reopen": False, "todos": []})
        nothing = {"actions": [], "writable": [], "required": [], "reopen": False, "todos": []}
        self.assertEqual(you("li"), nothing)
        self.assertEqual(you("audit"), nothing)
        status, resp, _ = self.call("POST", "/tickets/%s/actions" % tid, {"action": "aprove"}, user="zhang")
        self.assert_error(resp, status, 422, "invalid_value", "action")
        self.assertEqual(resp["error"]["message"],
                         'unknown action "aprove": node accept (工单受理) offers approve, reject, transfer')
        self.assertEqual(self.act(tid, "zhang", "approve", {"complexity": "复杂"})["ticket"]["node"]["id"], "dispatch")
        self.assertEqual(self.act(tid, "wang", "reject", comment="信息不全")["ticket"]["node"]["id"], "accept")
        self.act(tid, "zhang", "approve")
        # 工程师 takes an engineer (the form's "role"): 李四 is customer service.
        r = self.act(tid, "wang", "approve", {"engineer": "li"}, expect=422)
        self.assertEqual((r["error"]["field"], r["error"]["message"]),
                         ("engineer", '工程师 (engineer): no active user "li" with role engineer'))
        r = self.act(tid, "wang", "approve", {"engineer": "zhao", "priority": "高"})
        self.assertEqual(r["ticket"]["node"]["id"], "engineer_fix")
        self.assertEqual(r["ticket"]["assignees"], [{"user": "zhao"}])
        self.assertEqual(r["ticket"]["priority"], "高")
        self.act(tid, "qian", "submit", {"solution": "x"}, expect=403)
        self.assertEqual(you("zhao")["actions"], ["submit", "transfer"])
        r = self.act(tid, "zhao", "transfer", to="qian", comment="出差")
        self.assertEqual(r["ticket"]["assignees"], [{"user": "qian"}])
        self.assertEqual(r["ticket"]["you"], nothing)  # the answer is zhao's view: no longer his
        self.assertEqual(you("qian")["actions"], ["submit", "transfer"])
        self.act(tid, "zhao", "submit", {"solution": "x"}, expect=403)
        _, inbox, _ = self.call("GET", "/inbox", user="qian")
        self.assertIn(tid, [i["id"] for i in inbox["items"]])
        r = self.act(tid, "qian", "submit", {"solution": "更换搓纸轮后测试正常。"})
        self.assertEqual(r["ticket"]["node"]["id"], "confirm")
        r = self.act(tid, "admin", "approve", comment="代客户确认")
        self.assertEqual(r["ticket"]["state"], "closed")
        # Closed: nothing to do at its node; reopened (to 工单受理) by who submitted it, its
        # supervisor or an administrator.
        self.assertEqual(you("li"), {**nothing, "reopen": True})
        self.assertEqual(you("zhang")["reopen"], True)
        self.assertEqual(you("qian"), nothing)
        self.assertEqual(you("audit"), nothing)
        # History: every event, in order, chained.
        status, hist, _ = self.call("GET", "/tickets/%s/events" % tid, user="audit")
        self.assertEqual(status, 200, hist)
        types = [e["type"] for e in hist["items"]]
        self.assertEqual(types[0], "TicketSubmitted")
        self.assertIn("Transferred", types)
        # Closed once (by the flow's end; the rule on flow_ended sets the status), and as the ticket
        # is 高 priority, the SLA figures it closed with are recorded last, with the close.
        self.assertEqual(types.count("TicketClosed"), 1)
        self.assertEqual(types[-4:], ["FlowEnded", "TicketClosed", "FieldsChanged", "SlaFinalized"])
        self.assertEqual(hist["items"][-1]["data"]["sla"]["policy"], "high")
        self.assertEqual([e["version"] for e in hist["items"]], list(range(1, len(types) + 1)))
        # A page at a time (limit, cursor), or what came after a position (from).
        pages, cursor = [], ""
        while cursor is not None:
            status, page, _ = self.call("GET", "/tickets/%s/events?limit=4%s" % (tid, cursor), user="audit")
            self.assertEqual(status, 200, page)
            pages.append(page["items"])
            cursor = page["next_cursor"] and "&cursor=" + page["next_cursor"]
        self.assertEqual([e for p in pages for e in p], hist["items"])
        self.assertEqual([len(p) for p in pages[:-1]], [4] * (len(pages) - 1))
        self.assertTrue(0 < len(pages[-1]) <= 4, pages)
        after = hist["items"][-3]["position"]
        _, tail, _ = self.call("GET", "/tickets/%s/events?from=%d" % (tid, after), user="audit")
        self.assertEqual((tail["items"], tail["next_cursor"]), (hist["items"][-2:], None))
        for query, param in [("limit=0", "limit"), ("cursor=x", "cursor"), ("form=1", "form")]:
            status, r, _ = self.call("GET", "/tickets/%s/events?%s" % (tid, query), user="audit")
            self.assert_error(r, status, 400, "bad_parameter", param)
        status, hist, _ = self.call("GET", "/tickets/%s/events" % tid, user="li")
        self.assert_error(hist, status, 403, "forbidden")
        # As it was: right after acceptance it stood in dispatch.
        submitted_at = self.call("GET", "/tickets/%s/events" % tid, user="audit")[1]["items"]
        dispatch_pos = [e["position"] for e in submitted_at if e["type"] == "NodeEntered"
                        and e["data"]["node"] == "dispatch"][0]
        _, then, _ = self.call("GET", "/tickets/%s?as_of=%d" % (tid, dispatch_pos), user="zhang")
        self.assertEqual(then["node"]["id"], "dispatch")
        self.assertEqual(then["state"], "open")
        self.assertEqual(then["you"], nothing)  # a past state is read, not acted on
        # The auditor's timeline, read from the live server's log.
        timeline = subprocess.run([TICKETCTL, "replay", "--data-dir", self.s.data_dir, "--ticket", tid],
                                  capture_output=True, check=True, text=True).stdout
        self.assertIn("transferred from zhao to qian “出差”", timeline)
        self.assertIn("工单受理 (accept) → 技术派单 (dispatch), waiting on role tech_supervisor", timeline)
        self.assertIn("complexity: (empty) → 复杂", timeline)
        self.assertRegex(timeline, "todo to cs_supervisor “新工单 %s[^”]*”  \\[" % tid)  # no to-do
        self.assertIn("%s: %d events" % (tid, len(types)), timeline)
        # A misspelt option is refused, naming what the verb takes, rather than ignored.
        wrong = subprocess.run([TICKETCTL, "replay", "--data-dir", self.s.data_dir, "--tiket", tid],
                               capture_output=True, text=True)
        self.assertEqual(wrong.returncode, 2, wrong.stdout)
        self.assertIn("unknown option --tiket (this verb takes --data-dir, --ticket)", wrong.stderr)

    def test_a_form_one_flow_takes_needs_no_flow_named(self):
        status, body, _ = self.call("POST", "/tickets", {"form": "service_ticket", "fields": SUBMISSION}, user="li")
        self.assertEqual(status, 201, body)
        self.assertEqual((body["ticket"]["flow"], body["ticket"]["node"]["id"]), ("service_flow", "accept"))
        rows = "客户名称,客户电话,来源渠道,问题类型,问题详细描述\r\n华南贸易,+86 138 0000 0201,电话,功能故障,卡纸\r\n"
        status, r, _ = self.call("POST", "/tickets/import?form=service_ticket&dry_run=true", user="li",
                                 raw=rows.encode(), headers={"Content-Type": "text/csv"})
        self.assertEqual((status, r["valid"]), (200, 1), r)
        status, r, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "nope", "fields": SUBMISSION},
                                 user="li")
        self.assert_error(r, status, 404, "not_found", "flow")

    def test_permission_denials(self):
        tid = self.submit()["id"]
        cases = [
            ("POST", "/tickets/%s/actions" % tid, {"action": "approve", "fields": {"complexity": "简单"}}, "li"),
            ("POST", "/tickets/%s/actions" % tid, {"action": "approve"}, "audit"),
            ("PATCH", "/tickets/%s" % tid, {"fields": {"solution": "x"}}, "zhang"),
            ("PATCH", "/tickets/%s" % tid, {"fields": {"priority": "高"}}, "li"),
            ("PUT", "/forms/f2", {"name": "x", "fields": [{"key": "a", "type": "text"}]}, "zhang"),
            ("POST", "/users", {"id": "x1", "name": "x", "password": "password1"}, "zhang"),
            ("GET", "/events", None, "li"),
            ("GET", "/audit/verify", None, "zhang"),
            ("POST", "/tickets/%s/rating" % tid, {"score": 4}, "zhang"),
            ("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow", "fields": SUBMISSION}, "audit"),
            ("POST", "/tickets/%s/comments" % tid, {"text": "审计意见"}, "audit"),
        ]
        for method, path, body, user in cases:
            status, resp, _ = self.call(method, path, body, user=user)
            self.assert_error(resp, status, 403, "forbidden")
        # Submitting a field the start node does not let the submitter set.
        status, resp, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                         "fields": {**SUBMISSION, "solution": "x"}}, user="li")
        self.assert_error(resp, status, 403, "forbidden", "solution")
        # An action the node does not offer.
        status, resp, _ = self.call("POST", "/tickets/%s/actions" % tid, {"action": "submit"}, user="zhang")
        self.assert_error(resp, status, 422, "action_not_allowed")

    def test_public_replies_reach_the_portal_and_notes_stay_among_staff(self):
        # The business wants the customer told by SMS when staff answer.
        status, r, _ = self.call("PUT", "/rules/tell_customer", {
            "name": "回复通知客户", "form": "service_ticket", "trigger": {"type": "replied", "by": "staff"},
            "actions": [{"type": "notify", "to": {"field": "customer_phone"}, "channel": "sms",
                         "template": "服务单{{ticket.id}}:{{comment.text}}"}]}, user="admin")
        self.assertEqual(status, 201, r)
        status, r, _ = self.call("PUT", "/rules/tell_customer_typo", {
            "name": "x", "form": "service_ticket", "trigger": {"type": "replied", "by": "agent"},
            "actions": [{"type": "close"}]}, user="admin")
        self.assert_error(r, status, 422, "invalid_definition")
        t = self.submit()
        tid, code = t["id"], t["portal_code"]
        portal = "/api/v1/portal/tickets/%s" % tid
        self.act(tid, "zhang", "approve", {"complexity": "简单"}, comment="客服处理即可")
        for body in ({"text": "客户脾气急,注意沟通"}, {"text": "我们已安排工程师,明天上午上门。", "public": True}):
            status, r, _ = self.call("POST", "/tickets/%s/comments" % tid, body, user="li")
            self.assertEqual(status, 201, r)
        status, r, _ = self.s.call("POST", portal + "/comments?code=" + code, {"text": "好的,上午有人。"})
        self.assertEqual(status, 201, r)

        # The customer reads the reply and their own words, not the staff's notes, and no user ids.
        _, view, _ = self.s.call("GET", portal + "?code=" + code)
        self.assertEqual([(m["from"], m.get("name"), m["text"]) for m in view["conversation"]],
                         [("staff", "李四", "我们已安排工程师,明天上午上门。"), ("customer", None, "好的,上午有人。")])
        # Staff read every word on the ticket, in order, and who wrote it.
        status, notes, _ = self.call("GET", "/tickets/%s/comments" % tid, user="zhao")
        self.assertEqual(status, 200, notes)
        self.assertEqual([(n["kind"], n["event"], n["author"], n["text"]) for n in notes["items"]], [
            ("note", "Approved", "zhang", "客服处理即可"),
            ("note", "CommentAdded", "li", "客户脾气急,注意沟通"),
            ("reply", "CommentAdded", "li", "我们已安排工程师,明天上午上门。"),
            ("customer", "CommentAdded", "portal", "好的,上午有人。")])
        self.assertEqual(notes["items"][0]["author_name"], "张三")
        positions = [n["position"] for n in notes["items"]]
        self.assertEqual(positions, sorted(positions))
        self.assertIsNone(notes["next_cursor"])
        # A page at a time, as every list: the cursor is the last position a page answered.
        status, page, _ = self.call("GET", "/tickets/%s/comments?limit=3" % tid, user="zhao")
        self.assertEqual(([n["position"] for n in page["items"]], page["next_cursor"]),
                         (positions[:3], str(positions[2])))
        status, page, _ = self.call("GET", "/tickets/%s/comments?limit=3&cursor=%s" % (tid, page["next_cursor"]),
                                    user="zhao")
        self.assertEqual(([n["position"] for n in page["items"]], page["next_cursor"]), (positions[3:], None))
        self.assertIsNone(self.call("GET", "/tickets/%s/comments?limit=4" % tid, user="zhao")[1]["next_cursor"])
        for bad in ("limit=0", "limit=x", "cursor=-1", "page=2"):
            status, r, _ = self.call("GET", "/tickets/%s/comments?%s" % (tid, bad), user="zhao")
            self.assert_error(r, status, 400, "bad_parameter", bad.split("=")[0])
        # The public reply, and it alone, had the rule send the customer an SMS.
        _, sent, _ = self.call("GET", "/tickets/%s/notifications" % tid, user="admin")
        self.assertEqual([n["text"] for n in sent["items"] if n["rule"] == "tell_customer"],
                         ["服务单%s:我们已安排工程师,明天上午上门。" % tid])
        requests = [n["request"] for n in sent["items"]]
        self.assertGreater(len(requests), 1)
        _, page, _ = self.call("GET", "/tickets/%s/notifications?limit=1" % tid, user="admin")
        self.assertEqual(([n["request"] for n in page["items"]], page["next_cursor"]),
                         (requests[:1], str(requests[0])))
        _, page, _ = self.call("GET", "/tickets/%s/notifications?cursor=%s" % (tid, requests[0]), user="admin")
        self.assertEqual(([n["request"] for n in page["items"]], page["next_cursor"]), (requests[1:], None))
        status, r, _ = self.call("GET", "/tickets/%s/notifications?limit=0" % tid, user="admin")
        self.assert_error(r, status, 400, "bad_parameter", "limit")

        # Misspelt, mistyped or not the customer's to give: refused, and nothing is written.
        status, r, _ = self.call("POST", "/tickets/%s/comments" % tid, {"text": "x", "publc": True}, user="li")
        self.assert_error(r, status, 422, "unknown_field", "publc")
        status, r, _ = self.call("POST", "/tickets/%s/comments" % tid, {"text": "x", "public": "yes"}, user="li")
        self.assert_error(r, status, 422, "wrong_type", "public")
        status, r, _ = self.s.call("POST", portal + "/comments?code=" + code, {"text": "x", "public": True})
        self.assert_error(r, status, 422, "unknown_field", "public")
        status, r, _ = self.s.call("POST", portal + "/comments?code=" + code, {"txt": "好的"})
        self.assert_error(r, status, 422, "unknown_field", "txt")  # named, not "text is required"
        status, r, _ = self.call("POST", "/tickets/%s/comments" % tid, {"txt": "x", "public": True}, user="li")
        self.assert_error(r, status, 422, "unknown_field", "txt")
        status, r, _ = self.call("GET", "/tickets/T-999999/comments", user="li")
        self.assert_error(r, status, 404, "not_found")
        self.assertEqual(len(self.call("GET", "/tickets/%s/comments" % tid, user="li")[1]["items"]), 4)

    def test_a_query_parameter_a_route_does_not_take_is_refused(self):
        # A misspelt filter would otherwise list every ticket as if it applied.
        status, r, _ = self.call("GET", "/tickets?stauts=closed", user="zhang")
        self.assert_error(r, status, 400, "bad_parameter", "stauts")
        self.assertIn("takes form, node, status", r["error"]["message"])
        # A filter given twice has no one meaning: neither value is taken.
        status, r, _ = self.call("GET", "/tickets?status=open&status=closed", user="zhang")
        self.assert_error(r, status, 400, "bad_parameter", "status")
        self.assertIn('"status" is given twice', r["error"]["message"])
        # A misspelt dry_run would import for real.
        _, before, _ = self.call("GET", "/tickets?limit=1", user="li")
        rows = "客户名称,问题类型,问题详细描述,客户电话,来源渠道\n甲,功能故障,卡纸,13800000000,电话\n".encode()
        imp = "/tickets/import?form=service_ticket&flow=service_flow&"
        status, r, _ = self.call("POST", imp + "dryrun=true", user="li", raw=rows)
        self.assert_error(r, status, 400, "bad_parameter", "dryrun")
        status, r, _ = self.call("POST", imp + "dry_run=true", user="li", raw=rows)
        self.assertEqual((status, r["valid"]), (200, 1), r)
        _, after, _ = self.call("GET", "/tickets?limit=1", user="li")
        self.assertEqual(after["total"], before["total"])
        # Routes without parameters take none; the portal takes its code, and nothing else.
        status, r, _ = self.call("GET", "/me?verbose=1", user="li")
        self.assert_error(r, status, 400, "bad_parameter", "verbose")
        self.assertIn("GET /api/v1/me takes none", r["error"]["message"])
        t = self.submit()
        status, r, _ = self.s.call("GET", "/api/v1/portal/tickets/%s?code=%s&lang=en" % (t["id"], t["portal_code"]))
        self.assert_error(r, status, 400, "bad_parameter", "lang")
        # Who may not call a route hears that first; a wrong method is still a 405.
        status, r, _ = self.s.call("GET", "/api/v1/tickets?stauts=closed")
        self.assertEqual(status, 401, r)
        status, r, _ = self.call("DELETE", "/tickets?stauts=closed", user="li")
        self.assertEqual(status, 405, r)

    def test_stale_if_match(self):
        tid = self.submit()["id"]
        status, view, headers = self.call("GET", "/tickets/" + tid, user="zhang")
        version = view["version"]
        self.assertEqual(headers.get("ETag"), '"%d"' % version)
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "高"}}, user="zhang",
                                 headers={"If-Match": str(version)})
        self.assertEqual(status, 200, r)
        self.assertEqual(r["version"], version + 1)
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": '"%d"' % version})
        self.assert_error(r, status, 409, "conflict")
        self.assertEqual(r["error"]["current_version"], version + 1)
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": "soon"})
        self.assert_error(r, status, 400, "bad_request")
        # An empty If-Match (a client whose version variable was unset) and two of them are
        # refused, not taken as none: either would write over whatever the ticket holds now.
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": ""})
        self.assert_error(r, status, 400, "bad_request", "If-Match")
        self.assertIn("If-Match is empty", r["error"]["message"])
        conn = http.client.HTTPConnection(self.s.base.split("//")[1], timeout=30)
        self.addCleanup(conn.close)
        conn.putrequest("PATCH", "/api/v1/tickets/" + tid)
        body = json.dumps({"fields": {"priority": "低"}}).encode()
        for name, value in (("Authorization", "Bearer " + self.tokens["zhang"]), ("If-Match", str(version)),
                            ("If-Match", str(version + 1)), ("Content-Length", str(len(body)))):
            conn.putheader(name, value)
        conn.endheaders(body)
        got = conn.getresponse()
        r = json.loads(got.read())
        self.assert_error(r, got.status, 400, "bad_request", "If-Match")
        self.assertIn("If-Match is given twice", r["error"]["message"])
        status, view, _ = self.call("GET", "/tickets/" + tid, user="zhang")
        self.assertEqual((view["version"], view["fields"]["priority"]), (version + 1, "高"))
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": 'W/"%d"' % (version + 1)})
        self.assert_error(r, status, 400, "bad_request")
        self.assertEqual(r["error"]["message"], 'If-Match: W/"%d" is a weak ETag, which If-Match never matches '
                         '(RFC 9110): send "%d", the ETag GET gave' % (version + 1, version + 1))
        # "*" (RFC 9110) asks for no version: the ticket exists, so the change is made.
        status, r, _ = self.call("PATCH", "/tickets/" + tid, {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": "*"})
        self.assertEqual((status, r.get("version")), (200, version + 2), r)
        status, r, _ = self.call("PATCH", "/tickets/T-999999", {"fields": {"priority": "低"}}, user="zhang",
                                 headers={"If-Match": "*"})
        self.assert_error(r, status, 404, "not_found")

    def test_idempotent_submit(self):
        first = self.submit(headers={"Idempotency-Key": "order-7781"})
        again = self.submit(headers={"Idempotency-Key": "order-7781"})
        self.assertEqual(first["id"], again["id"])
        # The same key with other fields is a mistake, not a retry: refused, nothing written. The
        # key is the caller's own: another user's same key is another ticket.
        before = self.s.call("GET", "/healthz")[1]["position"]
        status, r, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                      "fields": {**SUBMISSION, "description": "另一件事"}},
                                 user="li", headers={"Idempotency-Key": "order-7781"})
        self.assert_error(r, status, 422, "invalid_value", "Idempotency-Key")
        self.assertIn("used for a different request (ticket %s)" % first["id"], r["error"]["message"])
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        other = self.submit(user="zhang", headers={"Idempotency-Key": "order-7781"})
        self.assertNotEqual(other["id"], first["id"])
        # Racing repeats of a new key all get one ticket.
        results = []

        def go():
            results.append(self.submit(headers={"Idempotency-Key": "order-race"})["id"])

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(set(results)), 1, results)
        _, listing, _ = self.call("GET", "/tickets?limit=500", user="zhang")
        self.assertEqual(sum(1 for i in listing["items"] if i["id"] == results[0]), 1)
        # Racing requests under one key that ask for different things: one ticket, the others
        # refused, whether they lost the race in the log or came after the winner was applied.
        statuses = []

        def differ(n):
            status, r, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": {**SUBMISSION, "description": "第%d件" % n}},
                                     user="li", headers={"Idempotency-Key": "order-race-differ"})
            statuses.append((status, r.get("id") or r["error"]["code"]))

        threads = [threading.Thread(target=differ, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(s for s, _ in statuses), [201] + [422] * 7, statuses)
        self.assertEqual({x for s, x in statuses if s == 422}, {"invalid_value"}, statuses)

    def test_definition_put_with_if_match_does_not_undo_another_edit(self):
        form = {"name": "回访", "fields": [{"key": "note", "label": "备注", "type": "text"}]}
        status, r, _ = self.call("PUT", "/forms/revisit", form, user="admin", headers={"If-Match": "0"})
        self.assertEqual((status, r["version"]), (201, 1), r)
        status, r, headers = self.call("GET", "/forms/revisit", user="admin")
        self.assertEqual(headers["ETag"], '"1"')
        # Two administrators edit version 1; the second to publish is told, not overwritten.
        mine = dict(form, name="回访记录")
        theirs = dict(form, name="客户回访")
        status, r, _ = self.call("PUT", "/forms/revisit", mine, user="admin", headers={"If-Match": '"1"'})
        self.assertEqual((status, r["version"]), (200, 2), r)
        status, r, _ = self.call("PUT", "/forms/revisit", theirs, user="admin", headers={"If-Match": "1"})
        self.assert_error(r, status, 409, "conflict")
        self.assertEqual(r["error"]["current_version"], 2)
        status, r, _ = self.call("GET", "/forms/revisit", user="admin")
        self.assertEqual((r["version"], r["name"]), (2, "回访记录"))
        status, r, _ = self.call("PUT", "/forms/revisit", form, user="admin", headers={"If-Match": "0"})
        self.assert_error(r, status, 409, "conflict")
        status, r, _ = self.call("PUT", "/forms/revisit", form, user="admin", headers={"If-Match": "two"})
        self.assert_error(r, status, 400, "bad_request", "If-Match")
        # "*": whatever version it is at, but one that exists; a new definition is not made.
        status, r, _ = self.call("PUT", "/forms/revisit", dict(form, name="回访单"), user="admin",
                                 headers={"If-Match": "*"})
        self.assertEqual((status, r.get("version")), (200, 3), r)
        status, r, _ = self.call("PUT", "/forms/revisit2", form, user="admin", headers={"If-Match": "*"})
        self.assert_error(r, status, 409, "conflict")
        self.assertEqual(r["error"]["current_version"], 0)
        self.assertIn("does not exist yet", r["error"]["message"])
        status, r, _ = self.call("GET", "/forms/revisit2", user="admin")
        self.assertEqual(status, 404, r)
        # A document GET gave carries its id and version; another definition's id is refused.
        status, r, _ = self.call("PUT", "/forms/revisit", dict(form, id="other"), user="admin")
        self.assert_error(r, status, 422, "invalid_value", "id")
        status, got, _ = self.call("GET", "/forms/revisit", user="admin")
        status, r, _ = self.call("PUT", "/forms/revisit", got, user="admin")
        self.assertEqual((status, r["version"]), (200, 3), r)  # unchanged: nothing published

    def test_users_and_definitions_page_like_every_list(self):
        for path in ("/users", "/forms", "/rules", "/print-templates"):
            _, whole, _ = self.call("GET", path + "?limit=500", user="admin")
            self.assertIsNone(whole["next_cursor"])
            ids, cursor = [], None
            while True:
                _, page, _ = self.call("GET", path + "?limit=2" + ("&cursor=" + cursor if cursor else ""),
                                       user="admin")
                self.assertLessEqual(len(page["items"]), 2)
                ids += [item["id"] for item in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            self.assertEqual(ids, [item["id"] for item in whole["items"]], path)
            self.assertGreater(len(ids), 1, path)
        status, r, _ = self.call("GET", "/users?limit=many", user="admin")
        self.assert_error(r, status, 400, "bad_parameter", "limit")
        for path in ("/users", "/tickets", "/events", "/forms"):
            status, r, _ = self.call("GET", path + "?limit=0", user="admin")
            self.assert_error(r, status, 400, "bad_parameter", "limit")
            self.assertIn("at least 1", r["error"]["message"])

    def test_a_known_path_with_another_method_is_405_with_allow(self):
        t = self.submit()["id"]
        status, r, headers = self.call("DELETE", "/tickets/" + t, user="zhang")
        self.assert_error(r, status, 405, "method_not_allowed")
        self.assertEqual(headers["Allow"], "GET, HEAD, PATCH")
        self.assertIn("DELETE is not served at /api/v1/tickets/" + t, r["error"]["message"])
        status, r, headers = self.s.call("POST", "/healthz")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))
        status, r, _ = self.call("GET", "/nothing/here", user="zhang")
        self.assert_error(r, status, 404, "not_found")
        # HEAD is a GET without its body, on a connection that goes on.
        conn = http.client.HTTPConnection(self.s.base.split("//")[1], timeout=30)
        self.addCleanup(conn.close)
        auth = {"Authorization": "Bearer " + self.tokens["zhang"]}
        conn.request("GET", "/api/v1/tickets/" + t, headers=auth)
        got = conn.getresponse()
        body = got.read()
        conn.request("HEAD", "/api/v1/tickets/" + t, headers=auth)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b""))
        self.assertEqual((r.getheader("ETag"), int(r.getheader("Content-Length"))), (got.getheader("ETag"), len(body)))
        conn.request("GET", "/healthz")
        health = conn.getresponse()
        self.assertEqual((health.status, bool(health.read())), (200, True))
        # Where only POST is served, HEAD is refused as GET would be, and Allow says so.
        conn.request("HEAD", "/api/v1/tickets/" + t + "/actions", headers=auth)
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("Allow"), r.read()), (405, "POST", b""))

    def test_ticket_numbers_have_no_gaps(self):
        # Refused submissions, idempotent repeats and raced repeats (in this test and the ones
        # before it on this server) give their numbers back: the tickets are T-000001 … T-N.
        for fields in ({**SUBMISSION, "channel": "飞鸽"}, {"customer_name": "缺字段"}, {**SUBMISSION, "zzz": 1}):
            status, _, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": fields}, user="li")
            self.assertEqual(status, 422)
        first = self.submit(headers={"Idempotency-Key": "gapless"})["id"]
        self.assertEqual(self.submit(headers={"Idempotency-Key": "gapless"})["id"], first)
        last = self.submit()["id"]
        self.assertEqual(int(last[2:]), int(first[2:]) + 1)
        _, listing, _ = self.call("GET", "/tickets?limit=500", user="admin")
        numbers = sorted(int(t["id"][2:]) for t in listing["items"])
        self.assertEqual(numbers, list(range(1, len(numbers) + 1)))

    def test_bad_input_gets_clear_errors(self):
        bad = [
            (dict(raw=b'{"form":'), 400, "bad_request", None),
            (dict(raw=b'[1,2]'), 400, "bad_request", None),
            (dict(body={"form": "nope", "flow": "service_flow", "fields": SUBMISSION}), 404, "not_found", "form"),
            (dict(body={"from": "service_ticket", "fields": SUBMISSION}), 422, "unknown_field", "from"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "customer_name": 42}}), 422, "wrong_type", "customer_name"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {k: v for k, v in SUBMISSION.items() if k != "description"}}),
             422, "required", "description"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "channel": "飞鸽传书"}}), 422, "not_an_option", "channel"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "colour": "red"}}), 422, "unknown_field", "colour"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "customer_phone": "call me"}}), 422, "invalid_value", "customer_phone"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "customer_name": "x\u0000y"}}), 422, "invalid_value", "customer_name"),
            (dict(body={"form": "service_ticket", "flow": "service_flow",
                        "fields": {**SUBMISSION, "description": "\u001b[2J"}}), 422, "invalid_value", "description"),
            (dict(raw=b"x" * (9 * 1024 * 1024)), 413, "payload_too_large", None),
        ]
        for kw, status_expected, code, field in bad:
            status, resp, _ = self.call("POST", "/tickets", user="li", **kw)
            self.assert_error(resp, status, status_expected, code, field)
        # A misspelt member would drop what it carries without a word: refused, nothing written.
        tid = self.submit()["id"]
        before = self.s.call("GET", "/healthz")[1]["position"]
        for method, path, body, member in [
                ("POST", "/tickets/%s/actions" % tid,
                 {"action": "approve", "fields": {"complexity": "简单"}, "coment": "客服处理即可"}, "coment"),
                ("PATCH", "/tickets/%s" % tid, {"fields": {"priority": "高"}, "version": 4}, "version")]:
            status, resp, _ = self.call(method, path, body, user="zhang")
            self.assert_error(resp, status, 422, "unknown_field", member)
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        for token in [None, "not-a-token"]:
            status, resp, headers = self.s.call("GET", "/api/v1/tickets", token=token)
            self.assert_error(resp, status, 401, "unauthorized")
            self.assertEqual(headers.get("WWW-Authenticate"), 'Bearer realm="ticketd"')  # RFC 9110 15.5.2
        status, resp, _ = self.call("GET", "/tickets/T-999999", user="li")
        self.assert_error(resp, status, 404, "not_found")
        status, resp, _ = self.call("GET", "/tickets?limit=abc", user="li")
        self.assert_error(resp, status, 400, "bad_parameter", "limit")
        status, resp, _ = self.call("GET", "/tickets/T-000001?as_of=yesterday", user="li")
        self.assert_error(resp, status, 400, "bad_parameter", "as_of")
        self.assertEqual(resp["error"]["message"], "as_of must be an RFC 3339 time or a log position")
        # A position the log has not reached: the ticket's view now would pass for it.
        end = self.s.call("GET", "/healthz")[1]["position"]
        status, resp, _ = self.call("GET", "/tickets/T-000001?as_of=%d" % (end + 1), user="li")
        self.assert_error(resp, status, 400, "bad_parameter", "as_of")
        self.assertIn("beyond the end of the log", resp["error"]["message"])
        # A window turned round is said to be, not answered with nothing.
        status, resp, _ = self.call(
            "GET", "/tickets?created_from=2026-12-02T00:00:00Z&created_to=2026-12-01T00:00:00Z", user="li")
        self.assert_error(resp, status, 400, "bad_parameter", "created_to")
        status, resp, _ = self.call("GET", "/reports/by_channel?from=2026-12-02&to=2026-12-01", user="zhang")
        self.assert_error(resp, status, 400, "bad_parameter", "to")
        for query, param in [("by_channel?bucket=year", "bucket"), ("by_problem_type?field=nope", "field")]:
            status, resp, _ = self.call("GET", "/reports/" + query, user="zhang")
            self.assert_error(resp, status, 400, "bad_parameter", param)
        status, resp, _ = self.call("GET", "/reports/by_channel?from=2026-12-01&to=2026-12-01", user="zhang")
        self.assertEqual(status, 200, resp)  # one day
        # So is a form that is not there: its figures would be zeros.
        status, resp, _ = self.call("GET", "/reports/by_channel?form=service_tiket", user="zhang")
        self.assert_error(resp, status, 400, "bad_parameter", "form")
        self.assertEqual(resp["error"]["message"], 'no form "service_tiket"')
        status, resp, _ = self.call("GET", "/tickets?form=service_tiket", user="zhang")
        self.assert_error(resp, status, 400, "bad_parameter", "form")
        # And a node no flow has, or a user there is not.
        for query, param, message in [("node=acept", "node", 'no flow has a node "acept"'),
                                      ("form=service_ticket&node=acept", "node",
                                       'no flow of form service_ticket has a node "acept"'),
                                      ("assignee=zhnag", "assignee", 'no user "zhnag"'),
                                      ("priority=%E6%90%9E", "priority", 'no form has a priority "搞"'),
                                      ("form=service_ticket&priority=x", "priority",
                                       'no form service_ticket has a priority "x"')]:
            status, resp, _ = self.call("GET", "/tickets?" + query, user="zhang")
            self.assert_error(resp, status, 400, "bad_parameter", param)
            self.assertEqual(resp["error"]["message"], message)
        status, resp, _ = self.call("GET", "/tickets?node=accept&assignee=zhang&priority=%E9%AB%98", user="zhang")
        self.assertEqual(status, 200, resp)
        status, resp, _ = self.call("GET", "/nowhere", user="li")
        self.assert_error(resp, status, 404, "not_found")
        status, resp, _ = self.s.call("POST", "/api/v1/sessions", {"user": "li", "password": "wrong"})
        self.assert_error(resp, status, 401, "unauthorized")
        # A raw garbage request line, then the server is still healthy.
        host, port = self.s.base[len("http://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as c:
            c.sendall(b"BLAH \x00\x01 nonsense\r\n\r\n")
            c.recv(4096)
        self.assertEqual(self.s.call("GET", "/healthz")[0], 200)
        status, verify, _ = self.call("GET", "/audit/verify", user="audit")
        self.assertTrue(verify["ok"], verify)

    def test_definitions_are_versioned(self):
        form = {"name": "投诉单", "fields": [{"key": "who", "label": "投诉人", "type": "text", "required": True},
                                            {"key": "level", "label": "级别", "type": "select", "options": ["一般", "严重"]}]}
        status, r, _ = self.call("PUT", "/forms/complaint", form, user="admin")
        self.assertEqual((status, r["version"]), (201, 1), r)
        status, r, _ = self.call("PUT", "/forms/complaint", form, user="admin")
        self.assertEqual((status, r["version"]), (200, 1), r)
        form2 = dict(form, name="投诉单(新)")
        status, r, _ = self.call("PUT", "/forms/complaint", form2, user="admin")
        self.assertEqual((status, r["version"]), (200, 2), r)
        status, v1, _ = self.call("GET", "/forms/complaint?version=1", user="li")
        self.assertEqual(v1["name"], "投诉单")
        _, latest, headers = self.call("GET", "/forms/complaint", user="li")
        self.assertEqual((latest["version"], headers.get("ETag")), (2, '"2"'))
        for bad in ["0", "-1", "2x"]:
            status, r, _ = self.call("GET", "/forms/complaint?version=" + bad, user="li")
            self.assert_error(r, status, 400, "bad_parameter", "version")
        status, r, _ = self.call("GET", "/forms/complaint?version=9", user="li")
        self.assert_error(r, status, 404, "not_found")
        self.assertEqual(list(v1.keys()), ["id", "version", "name", "fields"])
        flow = {"name": "投诉流程", "form": "complaint",
                "nodes": [{"id": "s", "type": "start"},
                          {"id": "a", "name": "处理", "type": "approval", "assignee": {"role": "cs_agent"}},
                          {"id": "e", "type": "end"}],
                "edges": [{"from": "s", "to": "a"},
                          {"from": "a", "to": "e", "when": {"field": "levl", "op": "eq", "value": "严重"}}]}
        status, r, _ = self.call("PUT", "/flows/complaint_flow", flow, user="admin")
        self.assert_error(r, status, 422, "invalid_definition")
        self.assertIn('unknown field "levl"', r["error"]["message"])
        status, r, _ = self.call("GET", "/forms", user="li")
        self.assertIn("complaint", [f["id"] for f in r["items"]])

    def test_a_list_exports_as_csv_with_what_its_views_show(self):
        name = '导出 "CSV", 测试'  # a quote and a comma, as spreadsheets escape them
        ids = [self.submit(fields={**SUBMISSION, "customer_name": name})["id"] for _ in range(3)]
        query = "/tickets?q=" + urllib.parse.quote(name)
        _, listed, _ = self.call("GET", query, user="zhang")
        status, text, headers = self.call("GET", query, user="zhang", headers={"Accept": "text/csv"})
        self.assertEqual(status, 200, text)
        self.assertTrue(headers["Content-Type"].startswith("text/csv"))
        self.assertEqual(headers["X-Total-Count"], "3")
        self.assertNotIn("X-Next-Cursor", headers)
        rows = list(csv.reader(io.StringIO(text)))
        head, body = rows[0], rows[1:]
        self.assertEqual(head[:4], ["id", "form", "state", "node"])
        self.assertEqual([r[0] for r in body], [v["id"] for v in listed["items"]])
        self.assertEqual(sorted(r[0] for r in body), sorted(ids))
        form = self.call("GET", "/forms/service_ticket", user="admin")[1]
        label = {f["key"]: f["label"] for f in form["fields"]}
        for row, view in zip(body, listed["items"]):
            cells = dict(zip(head, row))
            self.assertEqual((cells["state"], cells["node"], cells["creator"]),
                             (view["state"], view["node"]["name"], "li"))
            for key, value in view["fields"].items():  # every field the view shows, as it shows it
                text = value if isinstance(value, str) else json.dumps(value)
                if text[:1] in ("+", "=", "@"):  # a spreadsheet would run it: text instead
                    text = "'" + text
                self.assertEqual(cells[label[key]], text, key)
            self.assertEqual(cells["客户电话"], "'+86 138 1234 5678")
        self.assertEqual(dict(zip(head, body[0]))["客户名称"], name)
        # Pages: the next cursor in a header.
        _, text, headers = self.call("GET", query + "&limit=2", user="zhang", headers={"Accept": "text/csv"})
        self.assertEqual((len(list(csv.reader(io.StringIO(text)))), headers["X-Next-Cursor"]), (3, "2"))
        status, r, _ = self.call("GET", query + "&limit=0", user="zhang", headers={"Accept": "text/csv"})
        self.assert_error(r, status, 400, "bad_parameter", "limit")
        # For Excel, which reads Chinese from a double-clicked file only after a byte-order mark.
        _, marked, _ = self.call("GET", query + "&bom=true", user="zhang", headers={"Accept": "text/csv"})
        self.assertTrue(marked.startswith("\ufeffid,form,state"), marked[:20])
        status, r, _ = self.call("GET", query + "&bom=1", user="zhang", headers={"Accept": "text/csv"})
        self.assert_error(r, status, 400, "bad_parameter", "bom")
        # Times on a zone's clock, as a spreadsheet reads a date and time.
        _, local, _ = self.call("GET", query + "&tz=Asia/Shanghai", user="zhang", headers={"Accept": "text/csv"})
        shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
        def wall(rfc3339):
            return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(shanghai) \
                .strftime("%Y-%m-%d %H:%M:%S")
        rows = list(csv.reader(io.StringIO(local)))
        for row, view in zip(rows[1:], listed["items"]):
            cells = dict(zip(rows[0], row))
            self.assertEqual((cells["created_at"], cells["创建时间"], cells["sla_due_at"]),
                             (wall(view["created_at"]), wall(view["fields"]["created_time"]),
                              wall(view["sla"]["due_at"]) if view["sla"]["due_at"] else ""))
            self.assertEqual(cells["客户名称"], name)
        for extra, headers in (("&tz=Asia/Beijing", {"Accept": "text/csv"}), ("&tz=Asia/Shanghai", None)):
            status, r, _ = self.call("GET", query + extra, user="zhang", headers=headers)
            self.assert_error(r, status, 400, "bad_parameter", "tz")

    def test_a_spreadsheet_is_imported_whole_or_not_at_all(self):
        def imp(text, query="", headers=None, user="li"):
            status, r, _ = self.call("POST", "/tickets/import?form=service_ticket&flow=service_flow" + query,
                                     user=user, raw=text.encode(), headers=headers)
            return status, r
        good = ("\ufeff客户名称,customer_phone,来源渠道,问题类型,问题详细描述\r\n"
                "导入甲,+86 138 0000 0101,电话,功能故障,\"卡纸,上门\"\r\n"
                "导入乙,'+86 138 0000 0102,微信,安装指导,装不上\r\n")
        status, r = imp(good, "&dry_run=true")
        self.assertEqual((status, r["valid"]), (200, 2), r)
        # One bad row: nothing is written, and every refused row says why.
        before = self.s.call("GET", "/healthz")[1]["position"]
        bad = good + "导入丙,,电报,功能故障,x\r\n,,电话,功能故障,y\r\n"
        status, r = imp(bad)
        self.assert_error(r, status, 422, "invalid_value")
        self.assertEqual([(x["row"], x["error"]["code"], x["error"].get("field")) for x in r["error"]["rows"]],
                         [(3, "not_an_option", "channel"), (4, "required", "customer_name")])
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        for text, code in (("客户名称,颜色\nx,红\n", "unknown_field"), ("客户名称\n", "invalid_value")):
            status, r = imp(text)
            self.assert_error(r, status, 422, code)
        # One field in two columns (its label and its key): which one counts is not guessed.
        status, r = imp("客户名称,客户电话,customer_name\n甲,+86 138 1234 5678,乙\n")
        self.assert_error(r, status, 422, "invalid_value", "customer_name")
        self.assertIn('columns 1 ("客户名称") and 3 ("customer_name") are both field customer_name',
                      r["error"]["message"])
        status, r = imp('a,"b\n')
        self.assert_error(r, status, 400, "bad_request")
        # Columns a spreadsheet saved without a name, and cells past the header's last column, are
        # nothing while they are empty; a value in one is refused, saying where.
        blank = ("客户名称,客户电话,来源渠道,问题类型,问题详细描述,\r\n"
                 "导入丁,+86 138 0000 0103,电话,功能故障,卡纸,,\r\n")
        status, r = imp(blank, "&dry_run=true")
        self.assertEqual((status, r["valid"]), (200, 1), r)
        status, r = imp(blank.replace("卡纸,,", "卡纸,备注,"), "&dry_run=true")
        self.assert_error(r, status, 422, "unknown_field")
        self.assertEqual(r["error"]["message"], "column 6 has no name in the header row, and row 1 has a value in "
                         "it: name its field or remove the column")
        status, r = imp(blank.replace("卡纸,,", "卡纸,,备注"), "&dry_run=true")
        self.assert_error(r, status, 422, "invalid_value")
        self.assertEqual(r["error"]["rows"][0]["error"]["message"],
                         "cell 7 has a value and the header row has no column for it")
        status, r, _ = self.call("POST", "/tickets/import?flow=service_flow", user="li", raw=good.encode())
        self.assert_error(r, status, 400, "bad_parameter", "form")
        status, r, _ = self.call("POST", "/tickets/import?form=service_ticket&flow=nope", user="li",
                                 raw=good.encode())
        self.assert_error(r, status, 404, "not_found", "flow")

        # The whole file: tickets in row order, as their own submits would make them.
        status, r = imp(good, headers={"Idempotency-Key": "import-1"})
        self.assertEqual((status, r["created"], r["failed"]), (201, 2, 0), r)
        first, second = (self.call("GET", "/tickets/" + x["id"], user="li")[1] for x in r["rows"])
        self.assertLess(first["id"], second["id"])
        self.assertEqual((first["fields"]["customer_name"], first["fields"]["description"], first["node"]["id"]),
                         ("导入甲", "卡纸,上门", "accept"))
        self.assertEqual(second["fields"]["customer_phone"], "+86 138 0000 0102")  # the export's ' undone
        self.assertEqual(first["creator"], "li")
        status, portal, _ = self.s.call("GET", "/api/v1/portal/tickets/%s?code=%s" % (first["id"], r["rows"][0]["portal_code"]))
        self.assertEqual(status, 200)
        # The same file with the same key again makes no new ticket.
        status, again = imp(good, headers={"Idempotency-Key": "import-1"})
        self.assertEqual([x["id"] for x in again["rows"]], [x["id"] for x in r["rows"]])
        # An export brought back: its own columns are ignored, a field no submit writes is refused
        # once, for its column, unless the column is empty (an export kept as a template).
        _, exported, _ = self.call("GET", "/tickets?q=" + urllib.parse.quote("导入"), user="li",
                                   headers={"Accept": "text/csv"})
        status, r = imp(exported, "&dry_run=true")
        self.assert_error(r, status, 403, "forbidden", "创建时间")
        self.assertIn("row 1 has a value in it; remove the column", r["error"]["message"])
        table = list(csv.reader(io.StringIO(exported)))
        not_at_submission = {"创建时间", "优先级", "工单状态", "处理方式", "工程师", "解决方案"}
        emptied = io.StringIO()
        csv.writer(emptied).writerows([table[0]] + [["" if table[0][i] in not_at_submission else c
                                                     for i, c in enumerate(row)] for row in table[1:]])
        status, r = imp(emptied.getvalue(), "&dry_run=true")
        self.assertEqual((status, r["valid"]), (200, 2), r)
        self.assertLessEqual({"创建时间", "工单状态"}, set(r["ignored_columns"]))
        keep = [i for i, c in enumerate(table[0]) if c not in not_at_submission]
        out = io.StringIO()
        csv.writer(out).writerows([[row[i] for i in keep] for row in table])
        status, r = imp(out.getvalue(), "&dry_run=true")
        self.assertEqual((status, r["valid"], r["ignored_columns"][:3]), (200, 2, ["id", "form", "state"]), r)

    def test_a_spreadsheet_as_a_chinese_excel_saves_it_is_read(self):
        def imp(raw, query="&dry_run=true", content_type="text/csv"):
            status, r, _ = self.call("POST", "/tickets/import?form=service_ticket&flow=service_flow" + query,
                                     user="li", raw=raw, headers={"Content-Type": content_type})
            return status, r
        rows = [["客户名称", "客户电话", "来源渠道", "问题类型", "问题详细描述"],
                ["华南贸易", "+86 138 0000 0201", "电话", "功能故障", "卡纸"]]
        # "CSV (逗号分隔)" on a Chinese Windows: GBK; named or not.
        gbk = "\r\n".join(",".join(r) for r in rows).encode("gbk")
        for content_type in ["text/csv", 'text/csv; charset="GBK"']:
            status, r = imp(gbk, content_type=content_type)
            self.assertEqual((status, r["valid"], r["encoding"]), (200, 1, "GB18030"), r)
        # "Unicode 文本": UTF-16 after its byte-order mark, tabs between the cells.
        status, r = imp("\r\n".join("\t".join(r) for r in rows).encode("utf-16"), query="")
        self.assertEqual((status, r["created"], r["encoding"]), (201, 1, "UTF-16"), r)
        ticket = self.call("GET", "/tickets/" + r["rows"][0]["id"], user="li")[1]
        self.assertEqual((ticket["fields"]["customer_name"], ticket["fields"]["description"]), ("华南贸易", "卡纸"))
        # Bytes in none of them, or not in the charset named: said, and nothing imported.
        for raw, content_type, message in [
                (b"\xff\xff,x\n", "text/csv", "the file is neither UTF-8 nor GBK/GB18030 (byte 1)"),
                (gbk, "text/csv; charset=utf-8", "the file is not UTF-8, as its charset says"),
                (gbk, "text/csv; charset=klingon", "charset klingon is not one this server reads")]:
            status, r = imp(raw, content_type=content_type)
            self.assert_error(r, status, 400, "bad_request")
            self.assertTrue(r["error"]["message"].startswith(message), r)

    def test_imported_cells_take_their_fields_types(self):
        form = {"name": "盘点单", "fields": [
            {"key": "item", "label": "物料", "type": "text", "required": True},
            {"key": "count", "label": "数量", "type": "number"},
            {"key": "urgent", "label": "加急", "type": "checkbox"},
            {"key": "tags", "label": "标签", "type": "multiselect", "options": ["备件", "返修", "保内"]},
            {"key": "photo", "label": "照片", "type": "image"},
            {"key": "owner", "label": "负责人", "type": "person"},
            {"key": "due", "label": "计划完成", "type": "datetime"}]}
        self.assertEqual(self.call("PUT", "/forms/stocktake", form, user="admin")[0], 201)
        flow = {"name": "盘点", "form": "stocktake",
                "nodes": [{"id": "s", "type": "start"},
                          {"id": "a", "name": "核对", "type": "fill", "assignee": {"role": "cs_agent"}},
                          {"id": "e", "type": "end"}],
                "edges": [{"from": "s", "to": "a"}, {"from": "a", "to": "e"}]}
        self.assertEqual(self.call("PUT", "/flows/stocktake_flow", flow, user="admin")[0], 201)

        def imp(text, query=""):
            status, r, _ = self.call("POST", "/tickets/import?form=stocktake&flow=stocktake_flow" + query,
                                     user="li", raw=text.encode())
            return status, r
        status, r = imp("物料,数量,加急,标签,负责人\n搓纸轮,12.5,是,备件; 保内,赵六\n定影器,,false,,qian\n")
        self.assertEqual((status, r["created"]), (201, 2), r)
        first, second = (self.call("GET", "/tickets/" + x["id"], user="li")[1]["fields"] for x in r["rows"])
        self.assertEqual((first["count"], first["urgent"], first["tags"]), (12.5, True, ["备件", "保内"]))
        self.assertEqual((second["urgent"], "count" in second), (False, False))
        self.assertEqual((first["owner"], second["owner"]), ("zhao", "qian"))  # by name or by id
        for text, field in (("物料,数量\nx,十二\n", "count"), ("物料,加急\nx,maybe\n", "urgent"),
                            ("物料,照片\nx,a.png\n", "photo"), ("物料,标签\nx,杂项\n", "tags"),
                            ("物料,负责人\nx,无名氏\n", "owner")):
            status, r = imp(text)
            self.assert_error(r, status, 422, "invalid_value")
            self.assertEqual(r["error"]["rows"][0]["error"]["field"], field, r)
        # Date-times on a zone's clock with tz=, as the export with tz= writes them or Excel saves
        # them; RFC 3339 as ever.
        status, r = imp("物料,计划完成\n甲,2026/12/1 5:20\n乙,2026-12-01 05:20:30\n丙,2026-12-01T05:20:00+08:00\n",
                        "&tz=Asia/Shanghai")
        self.assertEqual((status, r["created"]), (201, 3), r)
        self.assertEqual([self.call("GET", "/tickets/" + x["id"], user="li")[1]["fields"]["due"] for x in r["rows"]],
                         ["2026-11-30T21:20:00Z", "2026-11-30T21:20:30Z", "2026-11-30T21:20:00Z"])
        for query in ("", "&tz=Asia/Shanghai"):  # without a zone a wall-clock time is no time at all
            status, r = imp("物料,计划完成\nx,2026-12-01 5:20\n" if not query else "物料,计划完成\nx,下周一\n", query)
            self.assert_error(r, status, 422, "invalid_value")
            self.assertEqual(r["error"]["rows"][0]["error"]["field"], "due", r)
        status, r = imp("物料\nx\n", "&tz=Mars/Olympus")
        self.assert_error(r, status, 400, "bad_parameter", "tz")

    def test_a_search_finds_what_its_caller_may_read(self):
        t = self.submit(fields={**SUBMISSION, "customer_name": "Acme Printing 检索", "customer_phone": "+86 138-5555 0101"})
        tid = t["id"]

        def found(q, user="li"):
            _, r, _ = self.call("GET", "/tickets?q=" + urllib.parse.quote(q), user=user)
            return tid in [x["id"] for x in r["items"]]
        # Latin letters whatever their case; a caller's number as the telephone shows it; the
        # ticket's id in either case, or its number.
        for q in ["acme printing", "ACME", "13855550101", "5555 0101", tid.lower(), str(int(tid[2:]))]:
            self.assertTrue(found(q), q)
        self.assertFalse(found("13855550102"))
        # Words, as a search box takes them: each anywhere the caller may read, all of them; the
        # spaces around and between them (a Chinese input method's U+3000 too) are no part.
        for q in ["  acme  ", "检索 acme", "检索\u300013855550101", "printing\t" + tid]:
            self.assertTrue(found(q), q)
        self.assertFalse(found("acme 没有的词"))
        # At 客户确认 staff read five fields, the phone not among them: it finds nothing there.
        self.act(tid, "zhang", "approve", {"complexity": "简单"})
        self.act(tid, "li", "submit", {"solution": "已处理"})
        self.assertTrue(found("acme"))
        self.assertFalse(found("13855550101"))
        self.assertTrue(found("13855550101", user="admin"))

    def test_lists_filter_and_page(self):
        ids = [self.submit(fields={**SUBMISSION, "customer_name": "分页客户%d" % i})["id"] for i in range(3)]
        status, page, _ = self.call("GET", "/tickets?q=分页客户&limit=2", user="zhang")
        self.assertEqual(status, 200, page)
        self.assertEqual([i["id"] for i in page["items"]], ids[:2])
        status, rest, _ = self.call("GET", "/tickets?q=分页客户&limit=2&cursor=" + page["next_cursor"], user="zhang")
        self.assertEqual([i["id"] for i in rest["items"]], ids[2:])
        self.assertIsNone(rest["next_cursor"])
        _, newest, _ = self.call("GET", "/tickets?q=分页客户&sort=-created_at", user="zhang")
        self.assertEqual([i["id"] for i in newest["items"]], ids[::-1])
        # Page by page, each page in its place of the whole order.
        seen, cursor = [], ""
        while cursor is not None:
            _, page, _ = self.call("GET", "/tickets?q=分页客户&sort=-updated_at&limit=1" + cursor, user="zhang")
            self.assertEqual(page["total"], 3)
            seen += page["items"]
            cursor = page["next_cursor"] and "&cursor=" + page["next_cursor"]
        self.assertEqual([i["id"] for i in seen],
                         [i["id"] for i in sorted(newest["items"], key=lambda i: datetime.datetime.fromisoformat(i["updated_at"].replace("Z", "+00:00")), reverse=True)])
        status, past, _ = self.call("GET", "/tickets?q=分页客户&cursor=9999999999999999999", user="zhang")
        self.assertEqual((status, past["items"], past["next_cursor"], past["total"]), (200, [], None, 3))
        _, at_accept, _ = self.call("GET", "/tickets?node=accept&status=open&form=service_ticket", user="zhang")
        self.assertTrue(set(ids) <= {i["id"] for i in at_accept["items"]})
        status, r, _ = self.call("GET", "/tickets?status=maybe", user="zhang")
        self.assert_error(r, status, 400, "bad_parameter", "status")

    def test_read_your_writes_and_metrics(self):
        t = self.submit()
        status, view, _ = self.call("GET", "/tickets/%s?min_position=%d" % (t["id"], t["position"]), user="li")
        self.assertEqual(status, 200)
        self.assertEqual(view["version"], t["version"])
        self.assertEqual(self.s.call("GET", "/metrics")[0], 401)  # a token, as on every call
        self.assertEqual(self.s.call("GET", "/metrics", token=self.tokens["li"])[0], 403)
        status, metrics, _ = self.s.call("GET", "/metrics", token=self.tokens["audit"])
        self.assertEqual(status, 200)
        self.assertIn("ticketd_log_fsync_batches_total", metrics)
        # A submit was synced: its time shows in seconds with their fraction, not truncated to 0.
        fsync = [l.split()[1] for l in metrics.splitlines() if l.startswith("ticketd_log_fsync_seconds_total ")]
        self.assertEqual(len(fsync), 1, metrics)
        self.assertGreater(float(fsync[0]), 0)
        self.assertIn("ticketd_http_request_seconds_bucket", metrics)
        # The read model, up to date, took the submission's events from the batch kept in memory.
        from_memory = [l.split()[1] for l in metrics.splitlines()
                       if l.startswith("ticketd_log_subscriber_events_from_memory_total ")]
        self.assertEqual(len(from_memory), 1, metrics)
        self.assertGreater(int(from_memory[0]), 0)

    def test_a_short_listing_is_answered_on_its_connection(self):
        # The server runs with --quick-listing 2: a listing whose filters leave two tickets at most
        # is answered at once on its connection's thread, so an agent's short inbox never waits
        # behind a search; one that considers more takes its turn on the query threads.
        def listings():
            status, metrics, _ = self.s.call("GET", "/metrics", token=self.tokens["audit"])
            self.assertEqual(status, 200)
            return {line.split('"')[1]: int(line.split()[1])
                    for line in metrics.splitlines() if line.startswith("ticketd_listings_total{")}
        for _ in range(3):
            self.submit()
        before = listings()
        self.assertEqual(set(before), {"connection", "query"})
        status, r, _ = self.call("GET", "/tickets?node=end&status=open", user="zhang")
        self.assertEqual((status, r["items"], r["total"]), (200, [], 0))
        status, r, _ = self.call("GET", "/inbox", user="audit")  # nothing waits on an auditor
        self.assertEqual((status, r["items"]), (200, []))
        after = listings()
        self.assertEqual((after["connection"], after["query"]), (before["connection"] + 2, before["query"]))
        status, r, _ = self.call("GET", "/tickets?q=%E5%AE%A2%E6%88%B7", user="zhang")
        self.assertEqual(status, 200, r)
        self.assertGreaterEqual(r["total"], 0)
        last = listings()
        self.assertEqual((last["connection"], last["query"]), (after["connection"], after["query"] + 1))

    def test_attachments(self):
        tid = self.submit()["id"]
        png = one_pixel_png()
        status, r, _ = self.call("POST", "/tickets/%s/attachments" % tid, user="li", raw=png,
                                 headers={"Content-Type": "image/png", "X-Filename": "photo.png"})
        self.assertEqual(status, 201, r)
        # The bytes are asked what they are: a "picture" that is not one is refused, and an
        # upload that names no file type (curl's form encoding) is recorded as what it is.
        for raw, content_type in [(b"<html>x</html>", "image/png"), (png, "image/jpeg")]:
            status, bad, _ = self.call("POST", "/attachments", user="li", raw=raw,
                                       headers={"Content-Type": content_type})
            self.assert_error(bad, status, 422, "invalid_value", "Content-Type")
        status, bare, _ = self.call("POST", "/attachments", user="li", raw=png,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(self.s.call("GET", "/api/v1/attachments/" + bare["attachment"],
                                     token=self.tokens["li"])[2]["Content-Type"], "image/png")
        att = r["attachment"]
        req_status, body, headers = self.s.call("GET", "/api/v1/attachments/" + att, token=self.tokens["li"])
        self.assertEqual(req_status, 200)
        self.assertEqual(headers.get("Content-Type"), "image/png")
        self.assertEqual(headers.get("Content-Disposition"),
                         "inline; filename=\"photo.png\"; filename*=UTF-8''photo.png")
        self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff")
        self.assertNotIn("Content-Security-Policy", headers)
        # An upload that a browser would run (HTML, SVG) is a download, sandboxed, never shown on
        # the API's origin; its name comes back as it was given.
        page = b"<script>fetch('/api/v1/tickets')</script>"
        for content_type, name in [("text/html", "报价.html"), ("image/svg+xml; charset=utf-8", "logo.svg")]:
            status, r, _ = self.call("POST", "/attachments", user="li", raw=page,
                                     headers={"Content-Type": content_type,
                                              "X-Filename": urllib.parse.quote(name)})
            self.assertEqual(status, 201, r)
            req_status, body, headers = self.s.call("GET", "/api/v1/attachments/" + r["attachment"],
                                                    token=self.tokens["li"])
            self.assertEqual((req_status, headers.get("Content-Type")), (200, content_type))
            self.assertEqual(headers.get("Content-Disposition"),
                             "attachment; filename=\"%s\"; filename*=UTF-8''%s"
                             % ("__.html" if name == "报价.html" else name, urllib.parse.quote(name)))
            self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff")
            self.assertEqual(headers.get("Content-Security-Policy"), "sandbox")
        # A file name is one line of UTF-8 text, percent-encoded in its header.
        before = self.s.call("GET", "/healthz")[1]["position"]
        # Auditors change nothing: no upload of theirs is stored, on a ticket or on its own.
        for path in ["/tickets/%s/attachments" % tid, "/attachments"]:
            status, r, _ = self.call("POST", path, user="audit", raw=b"x", headers={"Content-Type": "text/plain"})
            self.assert_error(r, status, 403, "forbidden")
        for name in ["a%0D%0AX-Evil:%201.txt", "a%00.txt", "a%FF%FE.txt", "x" * 256, "a%2.txt"]:
            status, r, _ = self.call("POST", "/attachments", user="li", raw=b"hello",
                                     headers={"Content-Type": "text/plain", "X-Filename": name})
            self.assert_error(r, status, 400, "bad_request", "X-Filename")
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        # A stand-alone upload can then be referenced from an attachment field.
        status, up, _ = self.call("POST", "/attachments", user="li", raw=b"%PDF-1.4 manual",
                                  headers={"Content-Type": "application/pdf",
                                           "X-Filename": urllib.parse.quote("说明书.pdf")})
        self.assertEqual(status, 201, up)
        self.assertEqual(up["filename"], "说明书.pdf")
        # A name sent with its path keeps the name only; a name that is all path, the id.
        for sent, kept in [("C:\\Users\\li\\说明书.pdf", "说明书.pdf"), ("../../etc/passwd", "passwd"),
                           ("docs/", None), ("a/..", None)]:
            status, r, _ = self.call("POST", "/attachments", user="li", raw=b"hello",
                                     headers={"Content-Type": "text/plain", "X-Filename": urllib.parse.quote(sent)})
            self.assertEqual(status, 201, r)
            self.assertEqual(r["filename"], kept or r["attachment"], sent)
        t = self.submit(fields={**SUBMISSION, "attachments": [up["attachment"]]})
        self.assertEqual(t["ticket"]["fields"]["attachments"], [up["attachment"]])
        status, r, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                      "fields": {**SUBMISSION, "attachments": ["att-nope"]}}, user="li")
        self.assert_error(r, status, 422, "invalid_value", "attachments")

    def test_an_attachment_opens_for_whoever_may_read_where_it_is(self):
        status, up, _ = self.call("POST", "/attachments", user="li", raw=b"%PDF-1.4 invoice",
                                  headers={"Content-Type": "application/pdf", "X-Filename": "invoice.pdf"})
        self.assertEqual(status, 201, up)

        def opens(user, attachment=up["attachment"]):
            status, r, _ = self.call("GET", "/attachments/" + attachment, user=user)
            return status if status == 200 else (status, r["error"]["code"])

        # In no ticket yet: its uploader, administrators and auditors only.
        self.assertEqual([opens(u) for u in ["li", "admin", "audit"]], [200, 200, 200])
        self.assertEqual(opens("zhang"), (403, "forbidden"))
        tid = self.submit(fields={**SUBMISSION, "attachments": [up["attachment"]]})["id"]
        self.assertEqual(opens("zhang"), 200)  # 工单受理 shows every field
        self.act(tid, "zhang", "approve", {"complexity": "简单"})
        self.act(tid, "li", "submit", {"solution": "已更换搓纸轮。"})
        # 客户确认 shows staff five fields, not the attachments: the file is hidden with its field.
        _, view, _ = self.call("GET", "/tickets/" + tid, user="zhang")
        self.assertNotIn("attachments", view["fields"])
        self.assertEqual(opens("zhang"), (403, "forbidden"))
        self.assertEqual([opens(u) for u in ["li", "admin", "audit"]], [200, 200, 200])
        # A ticket's own attachment opens for everyone who reads the ticket.
        status, own, _ = self.call("POST", "/tickets/%s/attachments" % tid, user="li", raw=b"log",
                                   headers={"Content-Type": "text/plain", "X-Filename": "log.txt"})
        self.assertEqual(status, 201, own)
        self.assertEqual(opens("zhao", own["attachment"]), 200)
        self.assertEqual(opens("zhao", "att-000000000000000000000000"), (404, "not_found"))

    def test_the_portal_opens_the_files_its_ticket_shows_the_customer(self):
        # A flow whose customer node shows the customer the pictures and files.
        flow = {"name": "现场确认", "form": "service_ticket", "portal_readable": ["customer_name"],
                "nodes": [{"id": "start", "name": "开始", "type": "start"},
                          {"id": "confirm", "name": "客户确认", "type": "approval", "assignee": {"role": "customer"},
                           "readable": ["customer_name", "attachments"], "actions": ["approve"]},
                          {"id": "end", "name": "结束", "type": "end"}],
                "edges": [{"from": "start", "to": "confirm"}, {"from": "confirm", "to": "end"}]}
        status, r, _ = self.call("PUT", "/flows/onsite_confirm", flow, user="admin")
        self.assertIn(status, (200, 201), r)
        uploads = []
        for name in ["现场照片.png", "报价单.pdf"]:
            status, up, _ = self.call("POST", "/attachments", user="li", raw=b"%PDF-1.4 " + name.encode(),
                                      headers={"Content-Type": "application/pdf",
                                               "X-Filename": urllib.parse.quote(name)})
            self.assertEqual(status, 201, up)
            uploads.append(up["attachment"])
        shown, elsewhere = uploads
        status, t, _ = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "onsite_confirm",
                                                      "fields": {**SUBMISSION, "attachments": [shown]}}, user="li")
        self.assertEqual(status, 201, t)
        other = self.submit(fields={**SUBMISSION, "attachments": [elsewhere]})  # 工单受理: no files shown
        status, own, _ = self.call("POST", "/tickets/%s/attachments" % t["id"], user="li", raw=b"notes",
                                   headers={"Content-Type": "text/plain", "X-Filename": "notes.txt"})
        self.assertEqual(status, 201, own)

        def portal_opens(ticket, attachment, code=None):
            status, r, h = self.s.call("GET", "/api/v1/portal/tickets/%s/attachments/%s?code=%s" %
                                       (ticket["id"], attachment, code or ticket["portal_code"]))
            return (status, h.get("Content-Disposition", "")) if status == 200 else (status, r["error"]["code"])

        status, disposition = portal_opens(t, shown)
        self.assertEqual(status, 200)
        self.assertIn("filename*=UTF-8''%E7%8E%B0%E5%9C%BA", disposition)
        # Not the staff's own attachment of the ticket, not another ticket's file, not a wrong code.
        self.assertEqual(portal_opens(t, own["attachment"]), (404, "not_found"))
        self.assertEqual(portal_opens(t, elsewhere), (404, "not_found"))
        self.assertEqual(portal_opens(other, elsewhere), (404, "not_found"))  # not customer-readable
        self.assertEqual(portal_opens(t, shown, code="nope"), (404, "not_found"))
        self.assertEqual(portal_opens(other, shown), (404, "not_found"))  # the file is on t

    def test_the_customer_sends_files_in_the_portal(self):
        rule = {"name": "客户留言", "form": "service_ticket", "trigger": {"type": "replied", "by": "customer"},
                "actions": [{"type": "notify", "to": {"role": "cs_supervisor"}, "channel": "todo",
                             "template": "客户在{{ticket.id}}发来:{{comment.text}}"}]}
        status, r, _ = self.call("PUT", "/rules/customer_wrote", rule, user="admin")
        self.assertEqual(status, 201, r)
        t = self.submit()
        tid, code = t["id"], t["portal_code"]
        portal = "/api/v1/portal/tickets/%s" % tid
        status, staff_file, _ = self.call("POST", "/tickets/%s/attachments" % tid, user="li", raw=b"notes",
                                          headers={"Content-Type": "text/plain", "X-Filename": "notes.txt"})
        self.assertEqual(status, 201, staff_file)

        def send(raw, name, ticket_code=code, ticket=tid):
            return self.s.call("POST", "/api/v1/portal/tickets/%s/attachments?code=%s" % (ticket, ticket_code),
                               raw=raw, headers={"Content-Type": "image/png",
                                                 "X-Filename": urllib.parse.quote(name)})[:2]

        # A photo of the fault: the customer sees it in the portal and opens it; staff see it
        # among the ticket's files, beside their own, which the customer neither sees nor opens.
        status, r = send(one_pixel_png(), "卡纸.png")
        self.assertEqual(status, 201, r)
        photo = r["attachment"]
        self.assertEqual([a["id"] for a in r["ticket"]["attachments"]], [photo])
        _, view, _ = self.s.call("GET", portal + "?code=" + code)
        self.assertEqual(view["attachments"], [{"id": photo, "filename": "卡纸.png", "content_type": "image/png",
                                                "size": len(one_pixel_png()), "by": "customer"}])
        self.assertTrue(view["can_attach"])
        status, body, _ = self.s.call("GET", portal + "/attachments/%s?code=%s" % (photo, code))
        self.assertEqual((status, body), (200, one_pixel_png()))
        status, r, _ = self.s.call("GET", portal + "/attachments/%s?code=%s" % (staff_file["attachment"], code))
        self.assertEqual(status, 404, r)
        _, staff_view, _ = self.call("GET", "/tickets/" + tid, user="zhang")
        self.assertEqual([(a["id"], a["by"]) for a in staff_view["attachments"]],
                         [(staff_file["attachment"], "li"), (photo, "customer")])
        self.assertEqual(self.s.call("GET", "/api/v1/attachments/" + photo, token=self.tokens["zhang"])[0], 200)
        # The photo is the customer's reply as words would be: their replied rule runs.
        _, sent, _ = self.call("GET", "/tickets/%s/notifications" % tid, user="admin")
        self.assertEqual([n["text"] for n in sent["items"] if n["rule"] == "customer_wrote"],
                         ["客户在%s发来:卡纸.png" % tid])
        self.assertEqual(self.call("PUT", "/rules/customer_wrote", {**rule, "enabled": False}, user="admin")[0], 200)
        # Staff send the customer a file (?public=true), as a public reply sends words: the portal
        # lists it under the staff member's name and the customer opens it.
        status, quote, _ = self.call("POST", "/tickets/%s/attachments?public=true" % tid, user="li",
                                     raw=b"%PDF-1.4 quote", headers={"Content-Type": "application/pdf",
                                                                     "X-Filename": urllib.parse.quote("报价单.pdf")})
        self.assertEqual(status, 201, quote)
        _, view, _ = self.s.call("GET", portal + "?code=" + code)
        self.assertEqual([(a["filename"], a["by"], a.get("name")) for a in view["attachments"]],
                         [("卡纸.png", "customer", None), ("报价单.pdf", "staff", "李四")])
        status, body, _ = self.s.call("GET", portal + "/attachments/%s?code=%s" % (quote["attachment"], code))
        self.assertEqual((status, body), (200, b"%PDF-1.4 quote"))
        _, staff_view, _ = self.call("GET", "/tickets/" + tid, user="zhang")
        self.assertEqual([a.get("public", False) for a in staff_view["attachments"]], [False, False, True])
        _, history, _ = self.call("GET", "/tickets/%s/events" % tid, user="audit")
        self.assertEqual([e["data"].get("public") for e in history["items"] if e["type"] == "AttachmentAdded"],
                         [None, None, True])
        for path in ["/api/v1/tickets/%s/attachments?public=yes" % tid, "/api/v1/attachments?public=true",
                     portal + "/attachments?public=true&code=" + code]:
            status, r, _ = self.s.call("POST", path, raw=b"x", token=self.tokens["li"],
                                       headers={"Content-Type": "text/plain"})
            self.assert_error(r, status, 400, "bad_parameter", "public")
        # A wrong code finds no ticket; a file that is not what it says is refused.
        self.assertEqual(send(one_pixel_png(), "x.png", "nope")[0], 404)
        status, r = send(b"<html>x</html>", "x.png")
        self.assert_error(r, status, 422, "invalid_value", "Content-Type")
        # As many as a ticket takes (20) of the customer's, then refused with nothing stored.
        for i in range(19):
            self.assertEqual(send(one_pixel_png(), "%d.png" % i)[0], 201)
        before = self.s.call("GET", "/healthz")[1]["position"]
        status, r = send(one_pixel_png(), "21.png")
        self.assert_error(r, status, 422, "out_of_range", "body")
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], before)
        self.assertFalse(self.s.call("GET", portal + "?code=" + code)[1]["can_attach"])
        # Closed, the ticket takes no more files from the customer: nobody works on it.
        other = self.submit()
        self.act(other["id"], "zhang", "reject")
        position = self.s.call("GET", "/healthz")[1]["position"]
        status, r = send(one_pixel_png(), "late.png", other["portal_code"], other["id"])
        self.assert_error(r, status, 422, "ticket_closed")
        self.assertEqual(self.s.call("GET", "/healthz")[1]["position"], position)


class ListingOptions(unittest.TestCase):
    def test_bad_listing_threads_or_steps_stop_the_start(self):
        for flag, value, message in (
                ("--query-threads", "0", "--query-threads must be a number from 1 to 256"),
                ("--query-threads", "x", "--query-threads must be a number from 1 to 256"),
                ("--scan-step", "0", "--scan-step must be a number of tickets from 1 to 1000000000"),
                ("--scan-step", "1e3", "--scan-step must be a number of tickets from 1 to 1000000000"),
                ("--quick-listing", "-1", "--quick-listing must be a number of tickets from 0 to 1000000000"),
                ("--quick-listing", "many", "--quick-listing must be a number of tickets from 0 to 1000000000")):
            s = Server(extra_args=[flag, value])
            self.addCleanup(s.cleanup)
            with self.assertRaises(RuntimeError) as e:
                s.start()
            self.assertIn(message, str(e.exception))


class RateLimit(unittest.TestCase):
    def test_per_token_limit_answers_429_with_retry_after(self):
        s = Server(extra_args=["--rate-limit", "5"]).start()
        try:
            li, zhang = s.login("li"), s.login("zhang")
            answers = [s.call("GET", "/api/v1/me", token=li) for _ in range(15)]  # burst is 10
            limited = [a for a in answers if a[0] == 429]
            self.assertTrue(limited, [a[0] for a in answers])
            status, body, headers = limited[0]
            self.assertEqual(body["error"]["code"], "rate_limited")
            self.assertGreaterEqual(int(headers["Retry-After"]), 1)
            self.assertEqual(s.call("GET", "/api/v1/me", token=zhang)[0], 200)  # other tokens unaffected
            wait_for(lambda: s.call("GET", "/api/v1/me", token=li)[0] == 200, what="the bucket to refill")
            # A portal code is the customer's token, limited alike, per ticket.
            tickets = [s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": SUBMISSION}, token=zhang)[1] for _ in range(2)]
            portal = ["/api/v1/portal/tickets/%s?code=%s" % (t["id"], t["portal_code"]) for t in tickets]
            answers = [s.call("GET", portal[0]) for _ in range(15)]
            limited = [a for a in answers if a[0] == 429]
            self.assertTrue(limited, [a[0] for a in answers])
            self.assertEqual(limited[0][1]["error"]["code"], "rate_limited")
            self.assertGreaterEqual(int(limited[0][2]["Retry-After"]), 1)
            self.assertEqual(s.call("GET", portal[1])[0], 200)  # another ticket's portal unaffected
        finally:
            s.cleanup()


class BrowserPages(unittest.TestCase):
    def test_pages_of_the_origins_named_may_call_and_read(self):
        app = "https://app.example.com"
        s = Server(extra_args=["--cors-origins", app + " https://portal.example.com"]).start()
        try:
            li = s.login("li")
            # The preflight comes without a token, and is answered for a named origin only.
            preflight = {"Origin": app, "Access-Control-Request-Method": "PATCH",
                         "Access-Control-Request-Headers": "authorization, content-type, if-match"}
            status, _, headers = s.call("OPTIONS", "/api/v1/tickets/T-000001", headers=preflight)
            self.assertEqual(status, 204)
            self.assertEqual(headers["Access-Control-Allow-Origin"], app)
            self.assertIn("PATCH", headers["Access-Control-Allow-Methods"])
            self.assertIn("If-Match", headers["Access-Control-Allow-Headers"])
            status, r, headers = s.call("OPTIONS", "/api/v1/tickets",
                                        headers={**preflight, "Origin": "https://evil.example.com"})
            self.assertEqual((status, r["error"]["code"]), (403, "forbidden"))
            self.assertNotIn("Access-Control-Allow-Origin", headers)
            # Answers, errors included, may be read by the page, and the ETag it needs for If-Match.
            t = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                    "fields": SUBMISSION}, token=li, headers={"Origin": app})
            self.assertEqual(t[0], 201)
            self.assertEqual(t[2]["Access-Control-Allow-Origin"], app)
            status, _, headers = s.call("GET", "/api/v1/tickets/" + t[1]["id"], token=li, headers={"Origin": app})
            self.assertEqual(status, 200)
            self.assertIn("ETag", headers["Access-Control-Expose-Headers"])
            status, _, headers = s.call("GET", "/api/v1/tickets/T-999999", token=li, headers={"Origin": app})
            self.assertEqual((status, headers["Access-Control-Allow-Origin"]), (404, app))
            # A 401's WWW-Authenticate too: the page learns its token is refused and how to ask.
            status, _, headers = s.call("GET", "/api/v1/tickets", token="expired", headers={"Origin": app})
            self.assertEqual((status, headers["Access-Control-Allow-Origin"]), (401, app))
            self.assertIn("WWW-Authenticate", headers["Access-Control-Expose-Headers"])
            # Another origin's page is answered, but its browser keeps the answer from it.
            status, _, headers = s.call("GET", "/api/v1/me", token=li, headers={"Origin": "https://evil.example.com"})
            self.assertEqual(status, 200)
            self.assertNotIn("Access-Control-Allow-Origin", headers)
        finally:
            s.cleanup()


class CustomerFiles(unittest.TestCase):
    def test_files_sent_to_the_customer_stay_sent_after_a_restart(self):
        s = Server().start()
        self.addCleanup(s.cleanup)
        li = s.login("li")
        status, t, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": SUBMISSION}, token=li)
        self.assertEqual(status, 201, t)
        portal = "/api/v1/portal/tickets/%s?code=%s" % (t["id"], t["portal_code"])
        for public in ("true", "false"):
            status, r, _ = s.call("POST", "/api/v1/tickets/%s/attachments?public=%s" % (t["id"], public),
                                  raw=b"manual " + public.encode(), token=li,
                                  headers={"Content-Type": "text/plain", "X-Filename": public + ".txt"})
            self.assertEqual(status, 201, r)
        listed = lambda: [a["filename"] for a in s.call("GET", portal)[1]["attachments"]]
        self.assertEqual(listed(), ["true.txt"])
        s.stop()  # from the snapshot
        s.start()
        self.assertEqual(listed(), ["true.txt"])
        s.stop()
        dump = lambda *flags: subprocess.run([TICKETCTL, "dump-views", "--data-dir", s.data_dir, *flags],
                                             capture_output=True, check=True, text=True).stdout
        out = dump()
        self.assertEqual(out, dump("--replay"))
        self.assertEqual(out.count('"public":true'), 1)


class Todos(unittest.TestCase):
    """A rule's to-do waits in its recipient's inbox until it is done."""

    def test_a_todo_is_in_its_recipients_inbox_until_done(self):
        s = Server().start()
        try:
            tokens = {u: s.login(u) for u in ("li", "zhang", "sun", "wang")}
            call = lambda method, path, body=None, user="admin": s.call(
                method, "/api/v1" + path, body, token=ADMIN_TOKEN if user == "admin" else tokens[user])
            rule = {"name": "经理关注", "form": "service_ticket", "trigger": {"type": "created"},
                    "actions": [{"type": "notify", "to": {"user": "sun"}, "channel": "todo",
                                 "template": "请关注 {{ticket.id}}"}]}
            self.assertEqual(call("PUT", "/rules/manager_todo", rule)[0], 201)
            prepare = {**rule, "name": "准备派工",
                       "actions": [{**rule["actions"][0], "to": {"role": "tech_supervisor"},
                                    "template": "准备派工 {{ticket.id}} 客户码 {{ticket.portal_code}}"}]}
            self.assertEqual(call("PUT", "/rules/prepare_todo", prepare)[0], 201)
            # A to-do for a field is for the person it holds: a phone field is refused.
            phone = {**rule, "actions": [{**rule["actions"][0], "to": {"field": "customer_phone"}}]}
            status, r, _ = call("PUT", "/rules/phone_todo", phone)
            self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
            self.assertIn("not of type person", r["error"]["message"])

            import websocket  # Debian's python3-websocket
            ws = websocket.create_connection(s.base.replace("http", "ws") + "/api/v1/stream?token=" +
                                             tokens["sun"], timeout=30)
            self.addCleanup(ws.close)
            ws.send(json.dumps({"op": "subscribe", "topic": "inbox"}))
            self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
            tids = [call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                              "fields": SUBMISSION}, user="li")[1]["id"] for _ in range(2)]
            # Each arrives in sun's inbox topic, first with the event that gave the to-do (and then
            # with the ticket's later events, as for a ticket waiting on him at its node).
            first = {}
            while len(first) < 2:
                m = json.loads(ws.recv())
                first.setdefault(m["ticket"]["id"], (m["type"], m["ticket"]["you"]["todos"][0]["text"]))
            self.assertEqual(first, {t: ("NotificationRequested", "请关注 " + t) for t in tids})
            inbox = lambda user: [t["id"] for t in call("GET", "/inbox", user=user)[1]["items"]]
            self.assertEqual(sorted(inbox("sun")), sorted(tids))  # sun acts at no node of the flow
            view = call("GET", "/tickets/" + tids[0], user="sun")[1]
            [todo] = view["you"]["todos"]
            self.assertEqual((todo["for"], todo["text"]), ({"user": "sun"}, "请关注 " + tids[0]))
            self.assertEqual(call("GET", "/tickets/" + tids[0], user="li")[1]["you"]["todos"], [])

            done = "/tickets/%s/todos/%d/done" % (tids[0], todo["id"])
            status, r, _ = call("POST", done, user="li")
            self.assertEqual((status, r["error"]["code"]), (403, "forbidden"), r)
            for path in ["/tickets/%s/todos/9999/done" % tids[0],
                         "/tickets/%s/todos/x/done" % tids[0]]:
                status, r, _ = call("POST", path, user="sun")
                self.assertEqual((status, r["error"]["code"]), (404, "not_found"), r)
            status, r, _ = call("POST", done, {"note": "x"}, user="sun")
            self.assertEqual((status, r["error"]["code"]), (422, "unknown_field"), r)
            status, r, _ = call("POST", done, user="sun")
            self.assertEqual(status, 200, r)
            self.assertEqual(r["ticket"]["you"]["todos"], [])
            self.assertEqual(inbox("sun"), [tids[1]])
            left = json.loads(ws.recv())
            while left["type"] != "TodoDone":
                left = json.loads(ws.recv())
            self.assertEqual((left["ticket"]["id"], left["ticket"]["you"]["todos"]), (tids[0], []))
            # A subscriber catching up from the start is told the same, from the log.
            late = websocket.create_connection(s.base.replace("http", "ws") + "/api/v1/stream?token=" +
                                               tokens["sun"], timeout=30)
            self.addCleanup(late.close)
            late.send(json.dumps({"op": "subscribe", "topic": "inbox", "from": 0}))
            self.assertEqual(json.loads(late.recv())["op"], "subscribed")
            replayed = json.loads(late.recv())
            while replayed.get("type") != "TodoDone":
                replayed = json.loads(late.recv())
            self.assertEqual(replayed["ticket"]["id"], tids[0])
            self.assertEqual(call("POST", done, user="sun")[0], 404)  # done once
            # The notifications list says which to-do a request opened, and whether it is done.
            listed = call("GET", "/tickets/%s/notifications" % tids[0])[1]["items"]
            self.assertEqual(sorted((n["to"], n["todo"]["open"]) for n in listed if "todo" in n),
                             [("sun", False), ("tech_supervisor", True)])
            self.assertNotIn("todo", [n for n in listed if n["to"] == "cs_supervisor"][0])  # node work
            events = call("GET", "/tickets/%s/events" % tids[0])[1]["items"]
            self.assertEqual([(e["type"], e["actor"], e["data"]) for e in events if e["type"] == "TodoDone"],
                             [("TodoDone", "sun", {"todo": todo["id"]})])

            # 技术主管's to-do is in 王五's inbox before the ticket reaches him, and settled by his
            # dispatching it; the reference rule's 新工单 for 客服主管 opened none (node work).
            self.assertEqual(sorted(inbox("wang")), sorted(tids))
            self.assertEqual(call("GET", "/tickets/" + tids[1], user="zhang")[1]["you"]["todos"], [])
            status, r, _ = call("POST", "/tickets/%s/actions" % tids[1],
                                {"action": "approve", "fields": {"complexity": "复杂"}}, user="zhang")
            self.assertEqual(status, 200, r)
            [wangs] = call("GET", "/tickets/" + tids[1], user="wang")[1]["you"]["todos"]
            # The customer's portal code is theirs: staff see it masked, an administrator as it is.
            code = call("GET", "/tickets/" + tids[1])[1]["you"]["todos"]
            self.assertEqual(wangs["text"], "准备派工 %s 客户码 ••••••" % tids[1])
            self.assertNotIn("••••••", [t["text"] for t in code if t["for"] == {"role": "tech_supervisor"}][0])
            status, r, _ = call("POST", "/tickets/%s/actions" % tids[1],
                                {"action": "approve", "fields": {"engineer": "zhao"}}, user="wang")
            self.assertEqual(status, 200, r)
            self.assertEqual(inbox("wang"), [tids[0]])
            self.assertEqual(inbox("sun"), [tids[1]])  # not sun's: he has not done his

            # Open to-dos survive a restart, from the snapshot and from the log alone.
            s.stop()
            s.start()
            tokens = {u: s.login(u) for u in ("li", "zhang", "sun", "wang")}
            self.assertEqual(inbox("sun"), [tids[1]])
            s.stop()
            out = subprocess.run([TICKETCTL, "dump-views", "--data-dir", s.data_dir], capture_output=True,
                                 check=True, text=True).stdout
            replayed = subprocess.run([TICKETCTL, "dump-views", "--data-dir", s.data_dir, "--replay"],
                                      capture_output=True, check=True, text=True).stdout
            self.assertEqual(out, replayed)
            self.assertIn("todo-user:sun", out)
            timeline = subprocess.run([TICKETCTL, "replay", "--data-dir", s.data_dir, "--ticket", tids[1]],
                                      capture_output=True, check=True, text=True).stdout
            given = re.search(r"todo to tech_supervisor “准备派工 %s 客户码 [^”]*” \(to-do (\d+)\)" % tids[1],
                              timeline)
            self.assertTrue(given, timeline)
            self.assertIn("to-do %s done" % given.group(1), timeline)
        finally:
            s.cleanup()


class Restart(unittest.TestCase):
    def test_restart_gives_the_same_views(self):
        s = Server().start()
        try:
            token = s.login("li")
            ids = []
            status, up, _ = s.call("POST", "/api/v1/attachments", raw=b"%PDF-1.4 manual", token=token,
                                   headers={"Content-Type": "application/pdf", "X-Filename": "manual.pdf"})
            self.assertEqual(status, 201, up)
            for i in range(5):
                fields = {**SUBMISSION, "customer_name": "客户%d" % i}
                if i == 0:
                    fields["attachments"] = [up["attachment"]]
                status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                                  "fields": fields},
                                      token=token)
                self.assertEqual(status, 201, r)
                ids.append(r["id"])
            before = {i: s.call("GET", "/api/v1/tickets/" + i, token=ADMIN_TOKEN)[1] for i in ids}
            s.stop()
            s.start()
            token = s.login("li")  # sessions survive: the old token still works too
            # The restored snapshot knows which ticket holds the attachment: one who did not upload
            # it but may read the field still opens it.
            status, _, _ = s.call("GET", "/api/v1/attachments/" + up["attachment"], token=s.login("zhang"))
            self.assertEqual(status, 200)
            after = {i: s.call("GET", "/api/v1/tickets/" + i, token=ADMIN_TOKEN)[1] for i in ids}
            for i in ids:
                before[i]["sla"].pop("breached")
                after[i]["sla"].pop("breached")
            self.assertEqual(before, after)
            status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                              "fields": SUBMISSION}, token=token)
            self.assertEqual(r["id"], "T-000006", r)  # numbering continues
        finally:
            s.cleanup()


class DeepDefinitions(unittest.TestCase):
    def test_a_definition_as_deep_as_a_request_may_be_is_kept_and_read_back(self):
        # A request may nest to depth 64; the rule's event wraps its condition a few levels deeper.
        # Such a rule was acknowledged and then never seen, live or after a restart: its event was
        # deeper than the model would parse.
        def rule(depth):  # the condition's innermost value at `depth` in the request body
            condition = {"field": "priority", "op": "eq", "value": "高"}
            for _ in range(depth - 2):
                condition = {"not": condition}
            return {"name": "深条件", "form": "service_ticket", "trigger": {"type": "created"},
                    "when": condition, "actions": [{"type": "set_field", "field": "priority", "value": "高"}]}
        s = Server().start()
        try:
            status, r, _ = s.call("PUT", "/api/v1/rules/deep", rule(64), token=ADMIN_TOKEN)
            self.assertEqual(status, 201, r)
            status, r, _ = s.call("PUT", "/api/v1/rules/deeper", rule(65), token=ADMIN_TOKEN)
            self.assertEqual((status, r["error"]["code"], r["error"]["message"]),
                             (400, "bad_request", "JSON nested too deeply"))
            for restarted in (False, True):
                status, r, _ = s.call("GET", "/api/v1/rules/deep", token=ADMIN_TOKEN)
                self.assertEqual(status, 200, (restarted, r))
                self.assertEqual(r["when"], rule(64)["when"])
                if not restarted:
                    s.stop()
                    s.start()
            self.assertEqual(s.call("GET", "/api/v1/rules/deeper", token=ADMIN_TOKEN)[0], 404)
        finally:
            s.cleanup()


def wait_for(predicate, deadline_s=30, what="condition"):
    """Polls `predicate` until it returns something truthy, or fails after the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class DemoRestart(unittest.TestCase):
    def test_a_restart_with_demo_keeps_an_administrators_changes(self):
        s = Server().start()
        try:
            _, form, _ = s.call("GET", "/api/v1/forms/service_ticket", token=ADMIN_TOKEN)
            document = {k: v for k, v in form.items() if k not in ("id", "version")}
            document["fields"].append({"key": "serial_no", "label": "设备序列号", "type": "text"})
            status, r, _ = s.call("PUT", "/api/v1/forms/service_ticket", document, token=ADMIN_TOKEN)
            self.assertEqual(status, 200, r)
            rule = {"name": "序列号变更", "form": "service_ticket",
                    "trigger": {"type": "field_changed", "field": "serial_no"},
                    "actions": [{"type": "set_field", "field": "priority", "value": "高"}]}
            self.assertEqual(s.call("PUT", "/api/v1/rules/serial", rule, token=ADMIN_TOKEN)[0], 201)
            s.stop()
            s.start()  # --demo again: the reference form's file lacks serial_no, which a rule names
            _, after, _ = s.call("GET", "/api/v1/forms/service_ticket", token=ADMIN_TOKEN)
            self.assertEqual(after["version"], form["version"] + 1)
            self.assertIn("serial_no", [f["key"] for f in after["fields"]])
        finally:
            s.cleanup()


class Timers(unittest.TestCase):
    RULE = {"name": "两秒未受理", "form": "service_ticket", "trigger": {"type": "idle", "node": "accept", "after": "2s"},
            "time_zone": "Asia/Shanghai",
            "actions": [{"type": "set_field", "field": "priority", "value": "高"},
                        {"type": "notify", "to": {"role": "dept_manager"}, "channel": "email",
                         "template": "工单{{ticket.id}}({{fields.created_time}} 提交)待受理超时"}]}

    def setUp(self):
        self.s = Server().start()
        status, r, _ = self.s.call("PUT", "/api/v1/rules/fast_idle", self.RULE, token=ADMIN_TOKEN)
        self.assertEqual(status, 201, r)
        self.li = self.s.login("li")

    def tearDown(self):
        self.s.cleanup()

    def submit(self):
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                               "fields": SUBMISSION}, token=self.li)
        self.assertEqual(status, 201, r)
        return r

    def fired(self, tid):
        _, hist, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % tid, token=ADMIN_TOKEN)
        return [e for e in hist["items"] if e["type"] == "TimerFired" and e["data"]["rule"] == "fast_idle"]

    def test_idle_rule_fires_once(self):
        r = self.submit()
        tid = r["id"]
        self.assertIsNotNone(r["ticket"]["sla"]["due_at"])
        wait_for(lambda: self.fired(tid), what="the 2s timer")
        view = wait_for(lambda: (lambda v: v if v["priority"] == "高" else None)(
            self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)[1]), what="priority 高")
        self.assertTrue(view["sla"]["breached"])
        _, hist, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % tid, token=ADMIN_TOKEN)
        mails = [e for e in hist["items"] if e["type"] == "NotificationRequested" and e["data"]["channel"] == "email"]
        self.assertEqual(len(mails), 1)
        # The e-mail says when the ticket came in on Beijing's clock, to the minute.
        created = datetime.datetime.fromisoformat(view["fields"]["created_time"].replace("Z", "+00:00"))
        beijing = created.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
        self.assertEqual(mails[0]["data"]["text"], "工单%s(%s 提交)待受理超时" % (tid, beijing))
        self.assertEqual(len(self.fired(tid)), 1)

    def test_a_rule_in_an_unknown_zone_is_refused(self):
        status, r, _ = self.s.call("PUT", "/api/v1/rules/fast_idle", dict(self.RULE, time_zone="Asia/Beijing"),
                                   token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
        self.assertIn('rule.time_zone: unknown time zone "Asia/Beijing"', r["error"]["message"])
        _, rule, _ = self.s.call("GET", "/api/v1/rules/fast_idle", token=ADMIN_TOKEN)
        self.assertEqual((rule["version"], rule["time_zone"]), (1, "Asia/Shanghai"))

    def test_leaving_the_node_cancels(self):
        tid = self.submit()["id"]
        zhang = self.s.login("zhang")
        status, r, _ = self.s.call("POST", "/api/v1/tickets/%s/actions" % tid,
                                   {"action": "approve", "fields": {"complexity": "简单"}}, token=zhang)
        self.assertEqual(status, 200, r)
        # A second ticket's timer firing proves the scheduler ran past the first one's due time.
        other = self.submit()["id"]
        wait_for(lambda: self.fired(other), what="the other ticket's timer")
        self.assertEqual(self.fired(tid), [])

    def overdue_timer_fires_once_after_restart(self, go_down):
        r = self.submit()
        tid = r["id"]
        go_down()
        due = r["ticket"]["sla"]["due_at"]
        due_s = datetime.datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp()
        wait_for(lambda: time.time() > due_s + 0.5, what="the due time to pass while down")
        self.s.start()
        wait_for(lambda: self.fired(tid), what="the overdue timer after restart")
        self.s.stop()
        self.s.start()
        self.assertEqual(len(self.fired(tid)), 1)
        status, verify, _ = self.s.call("GET", "/api/v1/audit/verify", token=ADMIN_TOKEN)
        self.assertTrue(verify["ok"], verify)

    def test_timer_due_while_down_fires_once_after_restart(self):
        def kill():  # kill -9 before the timer is due: the ticket is in the log's tail
            self.s.proc.kill()
            self.s.proc.wait()
            self.s.proc = None
        self.overdue_timer_fires_once_after_restart(kill)

    def test_timer_of_a_ticket_in_the_snapshot_fires_after_restart(self):
        # A clean stop saves the ticket in the snapshot; the start restores it without its timers
        # and computes them once serving: the overdue one must still fire, once.
        self.overdue_timer_fires_once_after_restart(self.s.stop)


class ReportsTest(unittest.TestCase):
    def test_reports_are_exact_and_rebuild_identically(self):
        s = Server().start()
        try:
            tok = {u: s.login(u) for u in ["li", "zhang", "wang", "zhao"]}

            def call(method, path, body=None, user="li", **kw):
                return s.call(method, "/api/v1" + path, body, token=tok[user], **kw)

            def submit(channel, problem):
                status, r, _ = call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                         "fields": {**SUBMISSION, "channel": channel, "problem_type": problem}})
                self.assertEqual(status, 201, r)
                return r["id"], r["portal_code"]

            t = [submit(c, p) for c, p in [("电话", "功能故障"), ("电话", "产品咨询"), ("电话", "功能故障"), ("微信", "安装指导")]]
            # Ticket 0: simple path, confirmed, rated 5 (first-contact resolution).
            call("POST", "/tickets/%s/actions" % t[0][0], {"action": "approve", "fields": {"complexity": "简单"}}, "zhang")
            call("POST", "/tickets/%s/actions" % t[0][0], {"action": "submit", "fields": {"solution": "好了"}}, "li")
            s.call("POST", "/api/v1/portal/tickets/%s/confirm?code=%s" % t[0], {})
            s.call("POST", "/api/v1/portal/tickets/%s/rating?code=%s" % t[0], {"score": 5})
            # Ticket 1: complex, rejected once on the way, then closed: not first-contact; rated 3.
            call("POST", "/tickets/%s/actions" % t[1][0], {"action": "approve", "fields": {"complexity": "复杂"}}, "zhang")
            call("POST", "/tickets/%s/actions" % t[1][0], {"action": "reject"}, "wang")
            call("POST", "/tickets/%s/actions" % t[1][0], {"action": "approve"}, "zhang")
            call("POST", "/tickets/%s/actions" % t[1][0], {"action": "approve", "fields": {"engineer": "zhao"}}, "wang")
            call("POST", "/tickets/%s/actions" % t[1][0], {"action": "submit", "fields": {"solution": "修好"}}, "zhao")
            status, r, _ = s.call("POST", "/api/v1/portal/tickets/%s/confirm?code=%s" % t[1], {})
            self.assertEqual(r["ticket"]["state"], "closed", r)
            s.call("POST", "/api/v1/portal/tickets/%s/rating?code=%s" % t[1], {"score": 3})
            # Ticket 2 is answered by a reply; ticket 3 has an internal note, which answers nobody.
            call("POST", "/tickets/%s/comments" % t[2][0], {"text": "已联系您,请保持电话畅通。", "public": True}, "zhang")
            call("POST", "/tickets/%s/comments" % t[3][0], {"text": "客户出差,下周再联系"}, "zhang")

            _, r, _ = call("GET", "/reports/by_channel")
            self.assertEqual(r["total"], 4)
            self.assertEqual(r["rows"], [{"key": "电话", "count": 3, "share": 0.75}, {"key": "微信", "count": 1, "share": 0.25}])
            _, r, _ = call("GET", "/reports/by_problem_type")
            self.assertEqual([(x["key"], x["count"]) for x in r["rows"]], [("功能故障", 2), ("产品咨询", 1), ("安装指导", 1)])
            _, r, _ = call("GET", "/reports/by_problem_type?field=priority")
            self.assertEqual(r["rows"], [{"key": "中", "count": 4, "share": 1}])
            status, r, _ = call("GET", "/reports/by_problem_type?field=description")
            self.assertEqual(status, 400, r)
            _, r, _ = call("GET", "/reports/first_contact_resolution")
            self.assertEqual((r["closed"], r["first_contact"], r["rate"]), (2, 1, 0.5))
            _, r, _ = call("GET", "/reports/csat")
            self.assertEqual((r["count"], r["average"]), (2, 4))
            self.assertEqual(len(r["rows"]), 1)
            # First response: the three answered tickets, from their own timestamps.
            views = [call("GET", "/tickets/" + i, user="zhang")[1] for i, _ in t]
            secs = sorted(int((datetime.datetime.fromisoformat(v["first_response_at"][:-1]) -
                               datetime.datetime.fromisoformat(v["created_at"][:-1])).total_seconds())
                          for v in views if v["first_response_at"])
            _, r, _ = call("GET", "/reports/first_response")
            self.assertEqual(r["count"], 3)
            self.assertEqual(r["p50_seconds"], secs[1])
            _, r, _ = call("GET", "/reports/backlog")
            self.assertEqual(sorted((x["node"], x["count"]) for x in r["rows"]), [("accept", 2)])
            self.assertEqual(r["rows"][0]["name"], "工单受理")
            today = datetime.datetime.utcnow().strftime("%Y-%m-%d")
            _, r, _ = call("GET", "/reports/by_channel?bucket=day&from=%s&to=%s" % (today, today))
            self.assertEqual(r["rows"][0]["bucket"], today)
            _, r, _ = call("GET", "/reports/by_channel?from=2000-01-01&to=2000-01-02")
            self.assertEqual(r["total"], 0)
            # A time is that instant, not its day, widened to the quarter hours reports count in;
            # the answer names the window counted.
            created = [datetime.datetime.fromisoformat(v["created_at"][:-1]) for v in views]
            last = max(created)
            quarter = last.replace(minute=last.minute - last.minute % 15, second=0, microsecond=0)
            text = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
            _, after, _ = call("GET", "/reports/by_channel?from=" + text(last))
            _, before, _ = call("GET", "/reports/by_channel?to=" + text(quarter))
            self.assertEqual((after["total"], after["from"]), (sum(c >= quarter for c in created), text(quarter)))
            self.assertEqual((before["total"], before["to"]), (sum(c < quarter for c in created), text(quarter)))
            self.assertGreater(after["total"], 0)
            ahead = quarter + datetime.timedelta(minutes=15)
            _, r, _ = call("GET", "/reports/by_channel?from=%s&to=%s" % (text(ahead), text(ahead)))
            self.assertEqual((r["total"], r["from"], r["to"]), (0, text(ahead), text(ahead)))
            _, r, _ = call("GET", "/reports/by_channel?to=" + text(quarter + datetime.timedelta(seconds=1)))
            self.assertEqual((r["total"], r["to"]), (4, text(ahead)))
            status, r, _ = call("GET", "/reports/by_channel?from=%s&to=%s" % (
                text(quarter + datetime.timedelta(seconds=2)), text(quarter + datetime.timedelta(seconds=1))))
            self.assertEqual((status, r["error"]["field"]), (400, "to"), r)
            # The backlog is now: a window or buckets on it are refused, as on a dashboard.
            for query in ["from=" + today, "to=" + today, "bucket=day"]:
                status, r, _ = call("GET", "/reports/backlog?" + query)
                self.assertEqual((status, r["error"]["code"], r["error"]["field"]),
                                 (400, "bad_parameter", query.split("=")[0]), r)
            # In a zone, the window and the buckets are that zone's days.
            shanghai = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
            _, r, _ = call("GET", "/reports/by_channel?bucket=day&tz=Asia/Shanghai&from=%s&to=%s" % (shanghai, shanghai))
            self.assertEqual((r["total"], {x["bucket"] for x in r["rows"]}), (4, {shanghai}), r)
            status, r, _ = call("GET", "/reports/by_channel?tz=Mars/Olympus")
            self.assertEqual((status, r["error"]["code"], r["error"]["field"]), (400, "bad_parameter", "tz"), r)
            self.assertIn('unknown time zone "Mars/Olympus"', r["error"]["message"])
            status, csv_text, headers = call("GET", "/reports/by_channel", headers={"Accept": "text/csv"})
            self.assertTrue(headers["Content-Type"].startswith("text/csv"))
            self.assertEqual(csv_text.splitlines(), ["key,count,share", "电话,3,0.75", "微信,1,0.25"])
            status, r, _ = call("GET", "/reports/nope")
            self.assertEqual(status, 404)
            status, r, _ = call("GET", "/reports/csat?bucket=year")
            self.assertEqual(status, 400)

            live = {n: call("GET", "/reports/" + n)[1] for n in
                    ["by_channel", "by_problem_type", "first_response", "first_contact_resolution", "csat",
                     "sla_breaches", "backlog"]}
            out = subprocess.run([TICKETCTL, "rebuild-reports", "--data-dir", s.data_dir],
                                 capture_output=True, check=True, text=True)
            rebuilt = {x["report"]: x["result"] for x in map(json.loads, out.stdout.splitlines())}
            self.assertEqual(live, rebuilt)
            self.assertRegex(out.stderr, r"events_per_s=\d+")

            # The reference dashboard: each widget is its report with the widget's parameters.
            status, board, _ = call("GET", "/dashboards/service_monitor/data", user="zhang")
            self.assertEqual(status, 200, board)
            self.assertEqual((board["name"], board["version"], board["time_zone"]),
                             ("售后服务监控看板", 1, "Asia/Shanghai"))
            self.assertEqual([w["report"] for w in board["widgets"]], list(live))
            for w in board["widgets"]:
                params = {k: w[k] for k in ("form", "field", "bucket", "from", "to") if k in w}
                params["tz"] = board["time_zone"]
                _, alone, _ = call("GET", "/reports/%s?%s" % (w["report"], urllib.parse.urlencode(params)))
                # The report alone names its window, which the widget gives beside its result.
                self.assertEqual({k: alone.pop(k) for k in ("from", "to") if k in alone},
                                 {k: w[k] for k in ("from", "to") if k in w})
                self.assertEqual(w["result"], alone, w["title"])
            by_channel = board["widgets"][0]
            self.assertEqual((by_channel["title"], by_channel["chart"], by_channel["days"], by_channel["to"]),
                             ("工单来源渠道", "pie", 30, shanghai))  # today in Shanghai
            self.assertEqual(by_channel["result"]["rows"], live["by_channel"]["rows"])
            self.assertNotIn("from", board["widgets"][6])  # backlog: now
            # An analyst gets the same page from the events alone.
            out = subprocess.run([TICKETCTL, "rebuild-reports", "--data-dir", s.data_dir,
                                  "--dashboard", "service_monitor"], capture_output=True, check=True, text=True)
            [offline] = map(json.loads, out.stdout.splitlines())
            self.assertEqual((offline["name"], offline["widgets"]), (board["name"], board["widgets"]))
            out = subprocess.run([TICKETCTL, "rebuild-reports", "--data-dir", s.data_dir, "--dashboard", "nope"],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
            self.assertIn('no dashboard "nope"', out.stderr)
        finally:
            s.cleanup()

    def test_dashboards_are_definitions(self):
        s = Server().start()
        try:
            admin = lambda m, p, b=None: s.call(m, "/api/v1" + p, b, token=ADMIN_TOKEN)
            status, r, _ = admin("GET", "/dashboards")
            self.assertEqual([d["id"] for d in r["items"]], ["service_monitor"])
            mine = {"name": "我的看板", "widgets": [
                {"title": "近7天渠道", "report": "by_channel", "chart": "bar", "days": 7},
                {"title": "按优先级", "report": "by_problem_type", "field": "priority", "form": "service_ticket"}]}
            status, r, headers = admin("PUT", "/dashboards/mine", mine)
            self.assertEqual((status, r["version"]), (201, 1), r)
            status, r, _ = admin("PUT", "/dashboards/mine", dict(mine, widgets=[{"title": "x", "report": "sales"}]))
            self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
            self.assertIn("dashboard.widgets[0].report", r["error"]["message"])
            status, r, _ = admin("PUT", "/dashboards/mine", dict(mine, time_zone="Asia/Peking"))
            self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
            self.assertIn('dashboard.time_zone: unknown time zone "Asia/Peking"', r["error"]["message"])
            # A form version may not turn the field a widget counts by into free text.
            _, form, _ = admin("GET", "/forms/service_ticket")
            fields = [{"key": "priority", "label": "优先级", "type": "text"} if f["key"] == "priority" else f
                      for f in form["fields"]]
            status, r, _ = admin("PUT", "/forms/service_ticket", dict(form, fields=fields))
            self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
            self.assertIn('would break dashboard mine: dashboard.widgets[1].field: "priority" is not a select field',
                          r["error"]["message"])
            self.assertEqual(admin("GET", "/forms/service_ticket")[1]["version"], form["version"])
            li = s.login("li")
            status, r, _ = s.call("PUT", "/api/v1/dashboards/mine", mine, token=li)
            self.assertEqual(status, 403, r)
            status, r, _ = s.call("GET", "/api/v1/dashboards/mine/data", token=li)
            self.assertEqual([w["title"] for w in r["widgets"]], ["近7天渠道", "按优先级"])
            utc_today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
            self.assertEqual((r["time_zone"], r["widgets"][0]["to"]), ("UTC", utc_today))
            self.assertEqual(r["widgets"][1]["result"]["rows"], [])
            self.assertEqual(admin("PUT", "/dashboards/mine", dict(mine, name="我的看板 v2"))[0], 200)
            _, r, _ = s.call("GET", "/api/v1/dashboards/mine/data?version=1", token=li)
            self.assertEqual((r["name"], r["version"]), ("我的看板", 1))
            status, r, _ = s.call("GET", "/api/v1/dashboards/nope/data", token=li)
            self.assertEqual((status, r["error"]["code"]), (404, "not_found"), r)
            status, r, _ = s.call("GET", "/api/v1/dashboards/mine/data?version=9", token=li)
            self.assertEqual((status, r["error"]["message"]), (404, 'no dashboard "mine" at version 9'), r)
            # As a definition's GET: versions start at 1, and 0 is not taken for the latest.
            for path in ["/api/v1/dashboards/mine/data?version=0", "/api/v1/dashboards/mine?version=0"]:
                status, r, _ = s.call("GET", path, token=li)
                self.assertEqual((status, r["error"]["field"]), (400, "version"), r)
            status, r, _ = s.call("GET", "/api/v1/dashboards/mine/data")
            self.assertEqual(status, 401, r)
        finally:
            s.cleanup()

    def test_the_company_zone_is_where_nothing_else_names_one(self):
        s = Server().start()
        try:
            admin = lambda m, p, b=None, **kw: s.call(m, "/api/v1" + p, b, token=ADMIN_TOKEN, **kw)
            li = s.login("li")
            status, r, headers = s.call("GET", "/api/v1/settings", token=li)
            self.assertEqual((status, r, headers.get("ETag")),
                             (200, {"id": "company", "version": 0, "time_zone": "UTC", "reopen_days": 7}, '"0"'))
            status, r, _ = s.call("PUT", "/api/v1/settings", {"time_zone": "Asia/Shanghai"}, token=li)
            self.assertEqual(status, 403, r)
            for body, message in (({"time_zone": "Asia/Beijing"}, 'settings.time_zone: unknown time zone "Asia/Beijing"'),
                                  ({}, "settings.time_zone: required"),
                                  ({"time_zone": "UTC", "locale": "zh-CN"}, "settings.locale: unknown property")):
                status, r, _ = admin("PUT", "/settings", body)
                self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
                self.assertIn(message, r["error"]["message"])
            status, r, _ = admin("PUT", "/settings", {"id": "acme", "time_zone": "UTC"})
            self.assertEqual((status, r["error"]["message"], r["error"]["field"]),
                             (422, 'the settings\' id is "company", not "acme"', "id"), r)
            # UTC+14 and UTC-11: their days differ at every hour, so which one counted shows.
            kiritimati, pago = zoneinfo.ZoneInfo("Pacific/Kiritimati"), zoneinfo.ZoneInfo("Pacific/Pago_Pago")
            # The settings are there before any change (If-Match: * holds), at version 0.
            status, r, _ = admin("PUT", "/settings", {"time_zone": "Pacific/Kiritimati"}, headers={"If-Match": "*"})
            self.assertEqual((status, r), (201, {"id": "company", "version": 1, "time_zone": "Pacific/Kiritimati"}))
            status, r, _ = admin("PUT", "/settings", {"time_zone": "Asia/Shanghai"}, headers={"If-Match": "0"})
            self.assertEqual((status, r["error"]["code"]), (409, "conflict"), r)
            self.assertEqual(admin("PUT", "/settings", {"time_zone": "Pacific/Kiritimati"})[0], 200)  # unchanged

            status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                              "fields": SUBMISSION}, token=li)
            self.assertEqual(status, 201, r)
            created = datetime.datetime.fromisoformat(r["ticket"]["created_at"].replace("Z", "+00:00"))
            day_in = lambda zone: created.astimezone(zone).strftime("%Y-%m-%d")

            def buckets(query):  # the answer names the zone whose days it counted
                r = s.call("GET", "/api/v1/reports/by_channel?bucket=day" + query, token=li)[1]
                return r["time_zone"], [x["bucket"] for x in r["rows"]]

            self.assertEqual(buckets(""), ("Pacific/Kiritimati", [day_in(kiritimati)]))
            self.assertEqual(buckets("&tz=Pacific/Pago_Pago"), ("Pacific/Pago_Pago", [day_in(pago)]))
            # A dashboard without a zone of its own counts the company's days; the reference one
            # keeps Asia/Shanghai.
            mine = {"name": "我的看板", "widgets": [{"title": "今天", "report": "by_channel", "days": 1}]}
            self.assertEqual(admin("PUT", "/dashboards/mine", mine)[0], 201)
            _, board, _ = s.call("GET", "/api/v1/dashboards/mine/data", token=li)
            today = datetime.datetime.now(kiritimati).strftime("%Y-%m-%d")
            self.assertEqual((board["time_zone"], board["widgets"][0]["to"]), ("Pacific/Kiritimati", today))
            _, board, _ = s.call("GET", "/api/v1/dashboards/service_monitor/data", token=li)
            self.assertEqual(board["time_zone"], "Asia/Shanghai")
            # The setting is part of the record: it survives a restart and is in the log.
            s.stop()
            s.start()
            status, r, _ = s.call("GET", "/api/v1/settings?version=1", token=ADMIN_TOKEN)
            self.assertEqual((status, r["time_zone"]), (200, "Pacific/Kiritimati"), r)
            status, r, _ = s.call("GET", "/api/v1/settings?version=2", token=ADMIN_TOKEN)
            self.assertEqual(status, 404, r)
            self.assertEqual(buckets(""), ("Pacific/Kiritimati", [day_in(kiritimati)]))
            s.stop()
            out = subprocess.run([TICKETCTL, "rebuild-reports", "--data-dir", s.data_dir, "--dashboard", "mine"],
                                 capture_output=True, text=True, check=True)
            [offline] = map(json.loads, out.stdout.splitlines())
            self.assertEqual((offline["time_zone"], offline["widgets"][0]["to"]), ("Pacific/Kiritimati", today))
        finally:
            s.cleanup()


class Projections(unittest.TestCase):
    """Views from snapshot + tail, after a kill -9, and rebuilt from zero are byte-identical."""

    def ticketctl(self, *args):
        return subprocess.run([TICKETCTL] + list(args), capture_output=True, check=True).stdout

    def test_snapshot_tail_and_rebuild_agree(self):
        s = Server().start()
        try:
            token = s.login("li")
            zhang = s.login("zhang")

            def submit(n):
                for i in range(n):
                    status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                                      "fields": {**SUBMISSION, "customer_name": "快照%d" % i}},
                                          token=token)
                    self.assertEqual(status, 201, r)
                    s.call("POST", "/api/v1/tickets/%s/actions" % r["id"], {"action": "approve",
                           "fields": {"complexity": "简单" if i % 2 else "复杂"}}, token=zhang)

            submit(4)
            # One left waiting at 工单受理 with priority 高: an idle timer and SLA clocks.
            status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                              "fields": {**SUBMISSION, "customer_name": "计时",
                                                                         "priority": "高"}}, token=token)
            self.assertEqual(status, 201, r)
            s.stop()  # a clean stop saves a snapshot
            at_snapshot = self.ticketctl("dump-views", "--data-dir", s.data_dir)
            self.assertIn("快照3".encode(), at_snapshot)
            # Restoring the snapshot gives what replaying the log gives, timers and indexes too.
            self.assertIn(b'"timer":', at_snapshot)
            self.assertIn(b'"index":"node:', at_snapshot)
            self.assertEqual(at_snapshot, self.ticketctl("dump-views", "--replay", "--data-dir", s.data_dir))
            s.start()
            token = s.login("li")
            zhang = s.login("zhang")
            submit(3)
            s.proc.kill()  # no final snapshot: the next reader needs snapshot + tail
            s.proc.wait()
            s.proc = None
            tail = self.ticketctl("dump-views", "--data-dir", s.data_dir)
            self.assertNotEqual(tail, at_snapshot)
            self.assertEqual(tail, self.ticketctl("dump-views", "--replay", "--data-dir", s.data_dir))
            out = self.ticketctl("rebuild", "--data-dir", s.data_dir).decode()
            self.assertRegex(out, r"rebuilt events=(\d+) seconds=[0-9.]+ events_per_s=\d+")
            # The raw-scan baseline read every event the rebuild did.
            events = re.search(r"rebuilt events=(\d+)", out).group(1)
            self.assertRegex(out, r"raw_scan_events=%s raw_scan_seconds=[0-9.]+ "
                                  r"raw_scan_events_per_s=\d+ ratio_vs_raw_scan=[0-9.]+" % events)
            # How the replay's two threads shared it: a few events make one batch, parsed by the
            # applying thread (the reader leaves the last batch to it).
            split = re.search(r"reader_cpu_seconds=[0-9.]+ applier_cpu_seconds=[0-9.]+ "
                              r"batches=(\d+) batches_parsed_by_reader=(\d+)", out)
            self.assertIsNotNone(split, out)
            self.assertEqual((split.group(1), split.group(2)), ("1", "0"), out)
            rebuilt = self.ticketctl("dump-views", "--data-dir", s.data_dir)
            self.assertEqual(tail, rebuilt)
            verify = self.ticketctl("verify", "--data-dir", s.data_dir).decode()
            self.assertTrue(verify.startswith("ok events="), verify)
            # And the server restarted on it serves what the tools saw.
            s.start()
            status, r, _ = s.call("GET", "/api/v1/tickets?q=快照&limit=500", token=ADMIN_TOKEN)
            self.assertEqual(len(r["items"]), 7)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
