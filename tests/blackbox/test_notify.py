"""The outbox against the real binary: rules' SMS, e-mail and webhook notifications delivered to a
local SMTP server (Debian's python3-aiosmtpd) and a local HTTP gateway, failures retried and
recorded, given up for good when retrying cannot help, and pending ones sent after a restart."""
import email
import email.header
import hashlib
import hmac
import http.server
import json
import socket
import subprocess
import threading
import time
import unittest

import websocket  # Debian's python3-websocket
from aiosmtpd.controller import Controller

from ticketd_server import ADMIN_TOKEN, Server
from test_api import SUBMISSION, TICKETCTL, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


class Gateway(http.server.ThreadingHTTPServer):
    """An SMS gateway and webhook receiver: answers `answers` in turn, then 200s; "hang" answers
    nothing until `release` is set."""

    def __init__(self):
        self.received = []
        self.requests = []  # (path, headers, raw body)
        self.answers = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers), raw))
                outer.received.append((self.path, self.headers.get("Idempotency-Key"), json.loads(raw)))
                status = outer.answers.pop(0) if outer.answers else 200
                if status == "hang":
                    outer.release.wait(60)
                    status = 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.daemon_threads = True
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)


MAIL_RULE = {"name": "新工单通知经理", "form": "service_ticket", "trigger": {"type": "created"},
             "actions": [{"type": "notify", "to": {"role": "dept_manager"}, "channel": "email",
                          "template": "新工单 {{ticket.id}}:{{fields.customer_name}}"},
                         {"type": "notify", "to": {"user": "zhang"}, "channel": "webhook",
                          "template": "工单 {{ticket.id}} 已创建"}]}


WEBHOOK_SECRET = "whsec-外部系统-1"


class Outbox(unittest.TestCase):
    def setUp(self):
        self.mailbox = Mailbox()
        self.smtp = Controller(self.mailbox, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.gateway = Gateway()
        self.addCleanup(self.gateway.shutdown)
        self.s = Server(extra_args=[
            "--smtp-url", "smtp://127.0.0.1:%d" % self.smtp.port, "--smtp-from", "tickets@example.com",
            "--sms-gateway", self.gateway.url("/sms"), "--webhook-url", self.gateway.url("/hook"),
            "--notify-retry", "1", "--notify-attempts", "3", "--webhook-secret", WEBHOOK_SECRET,
            "--sms-gateway-token", "sms-token-1"])
        self.s.start()
        self.addCleanup(self.s.cleanup)
        self.li = self.s.login("li")

    def submit(self):
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": SUBMISSION}, token=self.li)
        self.assertEqual(status, 201, r)
        return r["id"]

    def outcomes(self):
        _, r, _ = self.s.call("GET", "/api/v1/events?limit=500", token=ADMIN_TOKEN)
        return [e for e in r["items"] if e["stream"] == "outbox"]

    def sms(self):
        return [body for path, _, body in self.gateway.received if path == "/sms"]

    def test_sms_mail_and_webhook_are_delivered_and_recorded(self):
        self.assertEqual(self.s.call("PUT", "/api/v1/rules/mail_manager", MAIL_RULE, token=ADMIN_TOKEN)[0], 201)
        tid = self.submit()
        wait_for(lambda: len(self.outcomes()) == 3, what="three outcomes")
        # The reference application's SMS to the customer, and the rule's e-mail and webhook.
        self.assertEqual(self.sms(), [{"to": [SUBMISSION["customer_phone"]], "text": "您的服务单已受理,编号为" + tid,
                                       "ticket": tid, "id": self.sms()[0]["id"]}])
        (rcpt, message), = self.mailbox.messages
        self.assertEqual(rcpt, ["sun@example.com"])  # the role dept_manager's member
        subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
        self.assertEqual(subject, "工单 %s 通知" % tid)
        self.assertEqual(message.get_payload(decode=True).decode("utf-8"),
                         "新工单 %s:%s" % (tid, SUBMISSION["customer_name"]))
        hooks = [(key, body) for path, key, body in self.gateway.received if path == "/hook"]
        self.assertEqual(len(hooks), 1)
        self.assertEqual((hooks[0][1]["ticket"], hooks[0][1]["text"]), (tid, "工单 %s 已创建" % tid))
        self.assertEqual(hooks[0][0], "ticketd-notification-" + hooks[0][1]["id"])
        # The webhook is signed as its receiver would check it; the gateway gets its token.
        (_, headers, raw), = [r for r in self.gateway.requests if r[0] == "/hook"]
        stamp = headers["X-Ticketd-Timestamp"]
        self.assertLess(abs(int(stamp) - time.time()), 60)
        expected = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(headers["X-Ticketd-Signature"], "sha256=" + expected))
        self.assertNotIn("Authorization", headers)
        (_, headers, _), = [r for r in self.gateway.requests if r[0] == "/sms"]
        self.assertEqual(headers["Authorization"], "Bearer sms-token-1")
        self.assertNotIn("X-Ticketd-Signature", headers)
        self.assertEqual(sorted(e["type"] for e in self.outcomes()), ["NotificationDelivered"] * 3)
        self.assertEqual(sorted(e["data"]["channel"] for e in self.outcomes()), ["email", "sms", "webhook"])
        metrics = lambda: self.s.call("GET", "/metrics", token=ADMIN_TOKEN)[1]
        self.assertIn("ticketd_notifications_delivered_total 3\n", metrics())
        # The queue learns of an outcome from the log, a moment after it is written.
        wait_for(lambda: "ticketd_outbox_pending 0\n" in metrics(), what="an empty outbox")

    def test_retries_then_gives_up_and_permanent_failures_are_not_retried(self):
        self.gateway.answers = [503, 503]  # the first two SMS attempts fail, the third gets through
        self.submit()
        wait_for(lambda: any(e["type"] == "NotificationDelivered" for e in self.outcomes()), what="delivery")
        self.assertEqual([(e["type"], e["data"]["attempt"], e["data"].get("final")) for e in self.outcomes()],
                         [("NotificationFailed", 1, False), ("NotificationFailed", 2, False),
                          ("NotificationDelivered", 3, None)])
        keys = {key for path, key, _ in self.gateway.received}
        self.assertEqual(len(keys), 1)  # every retry carries the same Idempotency-Key

        self.gateway.answers = [400]  # refused as it is: no retry
        self.submit()
        wait_for(lambda: len(self.outcomes()) == 4, what="a final failure")
        last = self.outcomes()[-1]
        self.assertEqual((last["type"], last["data"]["final"]), ("NotificationFailed", True))
        self.assertIn("HTTP 400", last["data"]["error"])

        self.gateway.answers = [503] * 3  # --notify-attempts 3: given up after the third
        self.submit()
        wait_for(lambda: len(self.outcomes()) == 7, what="three attempts")
        self.assertEqual([e["data"]["final"] for e in self.outcomes()[-3:]], [False, False, True])
        self.assertEqual(len(self.sms()), 3 + 1 + 3)  # the gateway saw exactly the attempts recorded

    def test_pending_notifications_are_sent_after_a_restart(self):
        first = self.submit()
        wait_for(lambda: len(self.sms()) == 1 and self.outcomes(), what="the first SMS")
        self.gateway.answers = [503] * 100  # down
        second = self.submit()
        wait_for(lambda: any(e["data"]["ticket"] == second for e in self.outcomes()), what="a failed attempt")
        self.s.stop()
        self.gateway.answers = []  # up again while ticketd is down
        self.s.start()
        wait_for(lambda: any(e["type"] == "NotificationDelivered" and e["data"]["ticket"] == second
                             for e in self.outcomes()), what="delivery after the restart")
        delivered = [body["ticket"] for body in self.sms()]
        self.assertEqual(delivered.count(first), 1)  # the one delivered before is not sent again

    def test_a_stop_does_not_wait_for_a_hanging_gateway(self):
        self.addCleanup(self.gateway.release.set)
        self.gateway.answers = ["hang"]
        tid = self.submit()
        wait_for(lambda: self.sms(), what="the SMS under way")
        started = time.monotonic()
        self.s.stop()  # clean exit (0), without waiting out the transfer's 15 s timeout
        self.assertLess(time.monotonic() - started, 10)
        self.s.start()
        wait_for(lambda: any(e["type"] == "NotificationDelivered" and e["data"]["ticket"] == tid
                             for e in self.outcomes()), what="delivery after the restart")
        # The abandoned send was not an attempt: delivered at the first recorded one.
        self.assertEqual([(e["type"], e["data"]["attempt"]) for e in self.outcomes()],
                         [("NotificationDelivered", 1)])

    def test_a_hanging_gateway_holds_up_only_its_own_sends(self):
        self.addCleanup(self.gateway.release.set)
        self.assertEqual(self.s.call("PUT", "/api/v1/rules/mail_manager", MAIL_RULE, token=ADMIN_TOKEN)[0], 201)
        self.gateway.answers = ["hang"]  # the first POST (the webhook or the SMS) never answers
        self.submit()
        # The e-mail and the other POST get through meanwhile.
        wait_for(lambda: len(self.outcomes()) == 2, what="two deliveries beside the hung one")
        self.assertEqual(len(self.mailbox.messages), 1)
        self.gateway.release.set()
        wait_for(lambda: len(self.outcomes()) == 3, what="the third once the gateway answers")
        self.assertEqual(sorted(e["type"] for e in self.outcomes()), ["NotificationDelivered"] * 3)

    def test_pending_notifications_survive_kill_9(self):
        self.gateway.answers = [503] * 100
        tid = self.submit()
        wait_for(lambda: self.outcomes(), what="a failed attempt")
        self.s.proc.kill()  # no clean stop: the queue is rebuilt from the log
        self.s.proc.wait()
        self.gateway.answers = []
        self.s.start()
        wait_for(lambda: any(e["type"] == "NotificationDelivered" and e["data"]["ticket"] == tid
                             for e in self.outcomes()), what="delivery after kill -9")


class TicketNotifications(unittest.TestCase):
    """GET /tickets/{id}/notifications: each notification a ticket's rules requested and what became
    of it, as its outcomes on the outbox stream and this server's outbox say."""

    def setUp(self):
        self.gateway = Gateway()
        self.addCleanup(self.gateway.shutdown)
        # An SMS gateway but no SMTP server or webhook; retries an hour apart, so a failed SMS
        # stays pending for the test's length.
        self.s = Server(extra_args=["--sms-gateway", self.gateway.url("/sms"), "--notify-retry", "3600"])
        self.s.start()
        self.addCleanup(self.s.cleanup)

    def call(self, method, path, body=None, user="admin"):
        token = ADMIN_TOKEN if user == "admin" else self.s.login(user)
        status, r, _ = self.s.call(method, "/api/v1" + path, body, token=token)
        return status, r

    def submit(self):
        status, r = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                   "fields": SUBMISSION}, user="li")
        self.assertEqual(status, 201, r)
        return r["id"]

    def notifications(self, tid, user="admin"):
        status, r = self.call("GET", "/tickets/%s/notifications" % tid, user=user)
        self.assertEqual(status, 200, r)
        self.assertIsNone(r["next_cursor"])
        return {n["channel"]: n for n in r["items"]}

    def outbox_events(self):
        _, r = self.call("GET", "/events?limit=500")
        return [e for e in r["items"] if e["stream"] == "outbox"]

    def test_delivered_pending_failed_inbox_and_not_sent(self):
        self.assertEqual(self.call("PUT", "/rules/mail_manager", MAIL_RULE)[0], 201)
        tid = self.submit()
        wait_for(lambda: self.notifications(tid)["sms"]["status"] == "delivered", what="the SMS delivered")
        n = self.notifications(tid)
        self.assertEqual(set(n), {"todo", "sms", "email", "webhook"})
        sms = n["sms"]
        (delivery,) = self.outbox_events()
        self.assertEqual((sms["recipient"], sms["to"], sms["text"], sms["attempts"]),
                         ("phone", SUBMISSION["customer_phone"], "您的服务单已受理,编号为" + tid, 1))
        self.assertEqual(sms["delivered_at"], delivery["time"])
        self.assertEqual(sms["outcomes"], [{"position": delivery["position"], "type": "NotificationDelivered",
                                            "time": delivery["time"], "attempt": 1,
                                            "to": [SUBMISSION["customer_phone"]]}])
        _, history = self.call("GET", "/tickets/%s/events" % tid)
        requested = [e for e in history["items"] if e["type"] == "NotificationRequested"]
        self.assertEqual(sorted(e["position"] for e in requested), sorted(x["request"] for x in n.values()))
        self.assertEqual((n["todo"]["status"], n["todo"]["to"], n["todo"]["outcomes"]), ("inbox", "cs_supervisor", []))
        # No SMTP server and no webhook here: recorded, never sent, and the reason says why.
        self.assertEqual((n["email"]["status"], n["email"]["reason"]),
                         ("not_sent", "this server has no transport for email (--smtp-url)"))
        self.assertEqual(n["webhook"]["status"], "not_sent")
        self.assertIn("--webhook-url", n["webhook"]["reason"])

        self.gateway.answers = [503]
        second = self.submit()
        wait_for(lambda: self.notifications(second)["sms"]["attempts"] == 1, what="a failed attempt")
        sms = self.notifications(second)["sms"]
        self.assertEqual(sms["status"], "pending")
        self.assertIn("503", sms["error"])
        self.assertTrue(sms["retry_at"] > sms["requested_at"])
        (failure,) = sms["outcomes"]
        self.assertEqual((failure["type"], failure["attempt"], failure["final"]), ("NotificationFailed", 1, False))

        self.gateway.answers = [400]  # refused as it is: failed for good
        third = self.submit()
        wait_for(lambda: self.notifications(third)["sms"]["status"] != "pending", what="a final failure")
        sms = self.notifications(third)["sms"]
        self.assertEqual((sms["status"], sms["attempts"], sms["outcomes"][0]["final"]), ("failed", 1, True))
        self.assertIn("HTTP 400", sms["error"])

        # The auditor's timeline tells each outcome under its request.
        def timeline(ticket):
            return subprocess.run([TICKETCTL, "replay", "--data-dir", self.s.data_dir, "--ticket", ticket],
                                  capture_output=True, check=True, text=True).stdout
        self.assertIn("↳ delivered to " + SUBMISSION["customer_phone"], timeline(tid))
        self.assertRegex(timeline(second), r"↳ attempt 1 failed: .*503.*; retried at 20")
        self.assertRegex(timeline(third), r"↳ attempt 1 failed: .*HTTP 400.*; given up")

    def test_who_may_not_read_every_field_sees_no_text_and_no_address(self):
        tid = self.submit()
        wait_for(lambda: self.notifications(tid)["sms"]["status"] == "delivered", what="the SMS delivered")
        self.assertIn("text", self.notifications(tid, user="li")["sms"])  # 工单受理 reads "*"
        self.assertEqual(self.call("POST", "/tickets/%s/actions" % tid,
                                   {"action": "approve", "fields": {"complexity": "简单"}}, user="zhang")[0], 200)
        self.assertEqual(self.call("POST", "/tickets/%s/actions" % tid,
                                   {"action": "submit", "fields": {"solution": "已远程指导。"}}, user="li")[0], 200)
        # At 客户确认 the staff read five fields, not the customer's phone.
        sms = self.notifications(tid, user="li")["sms"]
        self.assertEqual(sms["status"], "delivered")
        for hidden in ("text", "to"):
            self.assertNotIn(hidden, sms)
        self.assertEqual(set(sms["outcomes"][0]), {"position", "type", "time", "attempt"})
        self.assertEqual(self.notifications(tid, user="li")["todo"]["to"], "cs_supervisor")  # a role
        self.assertIn("text", self.notifications(tid, user="audit")["sms"])

    def test_watchers_of_the_ticket_are_told_of_outcomes_live_and_in_replay(self):
        ws = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" +
                                         self.s.login("zhang"), timeout=30)
        self.addCleanup(ws.close)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
        self.gateway.answers = [503]  # the first attempt fails; the next is an hour away
        tid = self.submit()

        def until_outcome(ws):
            seen = []
            while True:
                m = json.loads(ws.recv())
                seen.append(m)
                if "notification" in m:
                    return seen
        live = until_outcome(ws)
        outcome = live[-1]
        self.assertEqual(outcome["type"], "NotificationFailed")
        self.assertEqual(outcome["ticket"]["id"], tid)
        self.assertEqual(outcome["ticket"]["version"], live[-2]["ticket"]["version"])  # the ticket is unchanged
        request = [n for n in self.notifications(tid).values() if n["channel"] == "sms"][0]
        self.assertEqual(outcome["notification"], {"request": request["request"], "channel": "sms",
                                                   "attempt": 1, "status": "pending"})
        self.assertEqual(outcome["position"], request["outcomes"][0]["position"])
        self.assertTrue(all("notification" not in m for m in live[:-1]))

        # A client that subscribes from before the ticket gets the same messages, in the same order.
        again = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" +
                                            self.s.login("zhang"), timeout=30)
        self.addCleanup(again.close)
        again.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": live[0]["position"] - 1}))
        self.assertEqual(json.loads(again.recv())["op"], "subscribed")
        replayed = until_outcome(again)
        strip = lambda ms: [(m["position"], m["type"], m.get("notification")) for m in ms]
        self.assertEqual(strip(replayed), strip(live))

        # Reports do not move for an outcome; the ticket's own topic hears it.
        mine = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" +
                                           self.s.login("zhang"), timeout=30)
        self.addCleanup(mine.close)
        mine.send(json.dumps({"op": "subscribe", "topic": "ticket:" + tid, "from": outcome["position"] - 1}))
        self.assertEqual(json.loads(mine.recv())["op"], "subscribed")
        self.assertEqual(strip([json.loads(mine.recv())]), strip([outcome]))

    def test_the_customers_link_reaches_them_and_no_one_else_among_staff(self):
        status, r = self.call("PUT", "/rules/portal_link", {
            "name": "进度链接", "form": "service_ticket", "trigger": {"type": "created"},
            "actions": [{"type": "notify", "to": {"field": "customer_phone"}, "channel": "sms",
                         "template": "查看进度 https://s.example.com/t/{{ticket.id}}?code={{ticket.portal_code}}"}]})
        self.assertEqual(status, 201, r)
        status, r = self.call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                   "fields": SUBMISSION}, user="li")
        tid, code = r["id"], r["portal_code"]
        link = "查看进度 https://s.example.com/t/%s?code=%s" % (tid, code)
        wait_for(lambda: any(body["text"] == link for _, _, body in self.gateway.received), what="the link's SMS")
        mine = lambda user: [n for n in self.call("GET", "/tickets/%s/notifications" % tid, user=user)[1]["items"]
                             if n["rule"] == "portal_link"][0]["text"]
        self.assertEqual(mine("admin"), link)
        self.assertEqual(mine("li"), "查看进度 https://s.example.com/t/%s?code=••••••" % tid)  # staff: no key
        # Nor the auditor, who changes nothing, and with the key could confirm, rate or reopen the
        # ticket as its customer: wherever the log shows it, the code is masked.
        self.assertEqual(mine("audit"), "查看进度 https://s.example.com/t/%s?code=••••••" % tid)
        history = lambda user: self.call("GET", "/tickets/%s/events" % tid, user=user)[1]["items"]
        self.assertEqual(history("admin")[0]["data"]["portal_code"], code)
        self.assertEqual(history("audit")[0]["data"]["portal_code"], "••••••")
        feed = json.dumps(self.call("GET", "/events?from=0&limit=500", user="audit")[1], ensure_ascii=False)
        self.assertIn(tid, feed)
        self.assertNotIn(code, feed)
        self.assertIn(code, json.dumps(self.call("GET", "/events?from=0&limit=500", user="admin")[1]))

    def test_unknown_ticket_and_no_token(self):
        status, r = self.call("GET", "/tickets/T-999999/notifications")
        self.assertEqual((status, r["error"]["code"]), (404, "not_found"))
        status, r, _ = self.s.call("GET", "/api/v1/tickets/T-000001/notifications")
        self.assertEqual(status, 401, r)

    def test_requests_made_before_the_first_transport_are_not_sent(self):
        s = Server()  # started without any transport
        self.addCleanup(s.cleanup)
        s.start()
        _, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                     "fields": SUBMISSION}, token=ADMIN_TOKEN)
        tid = r["id"]
        listed = lambda: {n["channel"]: n for n in
                          s.call("GET", "/api/v1/tickets/%s/notifications" % tid, token=ADMIN_TOKEN)[1]["items"]}
        self.assertEqual((listed()["sms"]["status"], listed()["sms"]["reason"]),
                         ("not_sent", "this server has no transport for sms (--sms-gateway)"))
        s.stop()
        s.extra_args = ["--sms-gateway", self.gateway.url("/sms")]
        s.start()
        self.assertEqual((listed()["sms"]["status"], listed()["sms"]["reason"]),
                         ("not_sent", "requested before this server first had a transport for sms"))
        _, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                     "fields": SUBMISSION}, token=ADMIN_TOKEN)
        wait_for(lambda: self.gateway.received, what="the later ticket's SMS")
        self.assertEqual([body["ticket"] for _, _, body in self.gateway.received], [r["id"]])

if __name__ == "__main__":
    unittest.main()


class TransportOptions(unittest.TestCase):
    def test_a_secret_or_token_without_its_receiver_stops_the_start(self):
        for args, message in ((["--webhook-secret", "s"], "--webhook-secret needs --webhook-url"),
                              (["--sms-gateway-token", "t"], "--sms-gateway-token needs --sms-gateway"),
                              (["--webhook-url", "http://127.0.0.1:9/", "--webhook-secret", "a\nb"],
                               "--webhook-secret may not contain line breaks")):
            s = Server(extra_args=args)
            self.addCleanup(s.cleanup)
            with self.assertRaises(RuntimeError) as e:
                s.start()
            self.assertIn(message, str(e.exception))
