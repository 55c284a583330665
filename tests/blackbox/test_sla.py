"""SLA policies, calendars, dry-runs and picking assignees, against the real binary.

Targets are seconds long and the calendar works around the clock, so the tests run at any hour;
business hours, holidays and DST are covered by the unit tests (tests/sla_test.cpp)."""
import json
import subprocess
import threading
import unittest

import websocket  # Debian's python3-websocket

from ticketd_server import ADMIN_TOKEN, TICKETCTL, Server
from test_api import SUBMISSION, wait_for


ALWAYS = {"name": "全天", "time_zone": "Asia/Shanghai",
          "weekly": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
FAST = {"name": "高优先级(测试)", "form": "service_ticket", "order": 1,
        "when": {"field": "priority", "op": "eq", "value": "高"},
        "calendar": "always", "targets": {"first_response": "2s", "resolution": "1h"},
        "pause_when": {"field": "status", "op": "eq", "value": "待客户确认"}, "warn_at": 0.5}


class SlaLive(unittest.TestCase):
    def setUp(self):
        self.s = Server().start()
        self.addCleanup(self.s.cleanup)
        for path, doc in (("/api/v1/calendars/always", ALWAYS), ("/api/v1/sla-policies/fast", FAST)):
            status, r, _ = self.s.call("PUT", path, doc, token=ADMIN_TOKEN)
            self.assertEqual(status, 201, r)
        self.li = self.s.login("li")
        self.zhang = self.s.login("zhang")

    def submit(self, priority="高"):
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": {**SUBMISSION, "priority": priority}},
            token=self.li)
        self.assertEqual(status, 201, r)
        return r

    def events(self, tid):
        _, hist, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % tid, token=ADMIN_TOKEN)
        return hist["items"]

    def view(self, tid):
        status, v, _ = self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, v)
        return v

    def test_definitions_are_checked_and_versioned(self):
        bad = dict(ALWAYS, time_zone="Mars/Olympus")
        status, r, _ = self.s.call("PUT", "/api/v1/calendars/mars", bad, token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        self.assertIn("calendar.time_zone", r["error"]["message"])
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/x", dict(FAST, calendar="nope"), token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        self.assertIn("unknown calendar", r["error"]["message"])
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/x", dict(FAST, targets={"resolution": "soon"}),
                                   token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        self.assertIn("sla_policy.targets.resolution", r["error"]["message"])
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/fast", FAST, token=self.li)
        self.assertEqual(status, 403, r)
        # The same document again publishes nothing; a change is version 2; both stay readable.
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/fast", FAST, token=ADMIN_TOKEN)
        self.assertEqual((status, r["version"]), (200, 1))
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/fast", dict(FAST, warn_at=0.7), token=ADMIN_TOKEN)
        self.assertEqual((status, r["version"]), (200, 2))
        status, r, _ = self.s.call("GET", "/api/v1/sla-policies/fast?version=1", token=ADMIN_TOKEN)
        self.assertEqual(r["warn_at"], 0.5)
        status, r, _ = self.s.call("GET", "/api/v1/calendars", token=ADMIN_TOKEN)
        self.assertEqual(sorted(c["id"] for c in r["items"]), ["always", "cn-workdays"])

    def test_breach_is_one_event_that_views_rules_stream_inbox_and_reports_agree_on(self):
        ws = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" + self.zhang,
                                         timeout=30)
        self.addCleanup(ws.close)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        r = self.submit()
        tid = r["id"]
        sla = r["ticket"]["sla"]
        self.assertEqual((sla["policy"], sla["policy_version"], sla["calendar"]), ("fast", 1, "always"))
        self.assertEqual(sla["first_response"]["target"], "2s")
        self.assertFalse(sla["breached"])
        self.assertEqual(sla["due_at"], sla["first_response"]["due_at"])  # the nearest target
        # Warning at half time, then the breach; the breach rule notifies the supervisors.
        wait_for(lambda: any(e["type"] == "SlaBreached" for e in self.events(tid)), what="the breach")
        items = self.events(tid)
        types = [e["type"] for e in items]
        self.assertLess(types.index("SlaWarning"), types.index("SlaBreached"))
        breach = items[types.index("SlaBreached")]
        self.assertEqual((breach["data"]["target"], breach["actor"]), ("first_response", "system"))
        notes = [e for e in items if e["type"] == "NotificationRequested" and e["data"]["rule"] == "sla_breached"]
        self.assertEqual(len(notes), 1)
        self.assertEqual(notes[0]["data"]["to"], "cs_supervisor")
        view = self.view(tid)
        self.assertTrue(view["sla"]["breached"])
        self.assertTrue(view["sla"]["first_response"]["breached"])
        self.assertFalse(view["sla"]["resolution"]["breached"])
        # The stream carried the breach with the view.
        def breach_message():
            m = json.loads(ws.recv())
            return m if m.get("type") == "SlaBreached" and m["ticket"]["id"] == tid else None
        m = wait_for(breach_message, what="SlaBreached on the stream")
        self.assertTrue(m["ticket"]["sla"]["breached"])
        # Inbox: breached first when sorted by due time; the filter finds it.
        calm = self.submit(priority="低")["id"]
        status, inbox, _ = self.s.call("GET", "/api/v1/inbox?sort=sla_due", token=self.zhang)
        ids = [t["id"] for t in inbox["items"]]
        self.assertLess(ids.index(tid), ids.index(calm))
        status, inbox, _ = self.s.call("GET", "/api/v1/inbox?sla=breached", token=self.zhang)
        self.assertEqual([t["id"] for t in inbox["items"]], [tid])
        status, r, _ = self.s.call("GET", "/api/v1/inbox?sla=late", token=self.zhang)
        self.assertEqual((status, r["error"]["field"]), (400, "sla"))
        # Reports count the breach by target.
        status, rep, _ = self.s.call("GET", "/api/v1/reports/sla_breaches", token=ADMIN_TOKEN)
        self.assertIn({"key": "sla:first_response", "count": 1}, rep["rows"])
        # Restart: the same clock (still running: only its share used grows), no second breach.
        fixed = lambda clock: {k: v for k, v in clock.items() if k != "used"}
        before = self.view(tid)["sla"]["first_response"]
        self.s.stop()
        # Rebuilt from the log, the views (SLA history, recorded breaches) are the same.
        run = lambda *a: subprocess.run([TICKETCTL] + list(a), capture_output=True, check=True).stdout
        views = run("dump-views", "--data-dir", self.s.data_dir)
        self.assertIn(b'"sla_fired":["sla:first_response:0:warning","sla:first_response:0:breach"]', views)
        run("rebuild", "--data-dir", self.s.data_dir)
        self.assertEqual(run("dump-views", "--data-dir", self.s.data_dir), views)
        self.s.start()
        after = self.view(tid)["sla"]["first_response"]
        self.assertEqual(fixed(after), fixed(before))
        self.assertGreaterEqual(after["used"], before["used"])
        self.assertEqual(sum(e["type"] == "SlaBreached" for e in self.events(tid)), 1)

    def test_pauses_and_a_policy_edit_recompute_open_tickets_but_not_closed_ones(self):
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/fast",
                                   dict(FAST, targets={"resolution": "1h"}, warn_at=0), token=ADMIN_TOKEN)
        self.assertEqual(status, 200, r)
        open_id = self.submit()["id"]
        closed_id = self.submit()["id"]
        status, r, _ = self.s.call("POST", "/api/v1/tickets/%s/actions" % closed_id, {"action": "reject"},
                                   token=self.zhang)
        self.assertEqual(r["ticket"]["state"], "closed", r)
        closed_sla = self.view(closed_id)["sla"]
        self.assertEqual(closed_sla["resolution"]["target"], "1h")
        self.assertIsNotNone(closed_sla["resolution"]["stopped_at"])
        before = self.view(open_id)["sla"]["resolution"]
        status, r, _ = self.s.call("PUT", "/api/v1/sla-policies/fast",
                                   dict(FAST, targets={"resolution": "3h"}, warn_at=0), token=ADMIN_TOKEN)
        self.assertEqual((status, r["version"]), (200, 3))
        after = self.view(open_id)["sla"]
        self.assertEqual((after["policy_version"], after["resolution"]["target"]), (3, "3h"))
        self.assertGreater(after["resolution"]["due_at"], before["due_at"])
        self.assertEqual(self.view(closed_id)["sla"], closed_sla)  # the figures it closed with
        # Lowering the priority takes the ticket out of the policy altogether.
        status, r, _ = self.s.call("PATCH", "/api/v1/tickets/" + open_id, {"fields": {"priority": "低"}},
                                   token=self.zhang)
        self.assertEqual(status, 200, r)
        self.assertNotIn("policy", r["ticket"]["sla"])

    def test_dry_runs_replay_history_and_match_what_happened(self):
        tid = self.submit()["id"]
        wait_for(lambda: any(e["type"] == "SlaBreached" for e in self.events(tid)), what="the breach")
        live = [e["data"]["text"] for e in self.events(tid)
                if e["type"] == "NotificationRequested" and e["data"]["rule"] == "sla_breached"]
        # The rule that fired, replayed: the same notification, nothing written.
        positions = self.s.call("GET", "/api/v1/events?limit=500", token=ADMIN_TOKEN)[1]["items"]
        status, run, _ = self.s.call("POST", "/api/v1/rules/sla_breached/dry-run", None, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, run)
        mine = [h for h in run["hits"] if h["ticket"] == tid]
        self.assertEqual([a["data"]["text"] for h in mine for a in h["actions"]], live)
        self.assertEqual(len(self.s.call("GET", "/api/v1/events?limit=500", token=ADMIN_TOKEN)[1]["items"]),
                         len(positions))
        # A draft rule: what it would have done.
        draft = {"name": "草稿", "form": "service_ticket", "trigger": {"type": "sla_warning"},
                 "actions": [{"type": "notify", "to": {"role": "dept_manager"}, "channel": "sms",
                              "template": "预警{{ticket.id}}"}]}
        status, run, _ = self.s.call("POST", "/api/v1/rules/draft_warn/dry-run", draft, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, run)
        self.assertTrue(run["draft"])
        self.assertIn("预警" + tid, [a["data"]["text"] for h in run["hits"] for a in h["actions"]])
        status, r, _ = self.s.call("POST", "/api/v1/rules/draft_warn/dry-run?from=yesterday", draft,
                                   token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["field"]), (400, "from"))
        status, r, _ = self.s.call("POST", "/api/v1/rules/draft_warn/dry-run", dict(draft, trigger={"type": "x"}),
                                   token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        status, r, _ = self.s.call("POST", "/api/v1/rules/sla_breached/dry-run", None, token=self.li)
        self.assertEqual(status, 403, r)
        status, r, _ = self.s.call("POST", "/api/v1/rules/sla_breached/dry-run?version=99", None,
                                   token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["message"]), (404, 'no rule "sla_breached" at version 99'), r)
        # The policy as published: the breach it recorded live; a laxer draft: none.
        status, run, _ = self.s.call("POST", "/api/v1/sla-policies/fast/dry-run", None, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, run)
        breaches = [e for e in run["events"] if e["ticket"] == tid and e["type"] == "SlaBreached"]
        self.assertEqual([(e["target"], e["recorded"]) for e in breaches], [("first_response", True)])
        self.assertEqual(run["summary"]["first_response"]["breaches"], 1)
        lax = dict(FAST, targets={"first_response": "1h", "resolution": "1h"})
        status, run, _ = self.s.call("POST", "/api/v1/sla-policies/fast/dry-run", lax, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, run)
        self.assertEqual([e for e in run["events"] if e["type"] == "SlaBreached"], [])
        # Either published version, as a report: version 1 counts the breach too.
        status, run, _ = self.s.call("POST", "/api/v1/sla-policies/fast/dry-run?version=1", None, token=ADMIN_TOKEN)
        self.assertEqual(run["version"], 1)
        self.assertEqual(run["summary"]["first_response"]["breaches"], 1)


class Picking(unittest.TestCase):
    FLOW = {"name": "轮流派工", "form": "service_ticket",
            "nodes": [{"id": "start", "name": "开始", "type": "start"},
                      {"id": "fix", "name": "处理", "type": "fill",
                       "assignee": {"role": "engineer", "pick": "round_robin"}, "actions": ["submit"]},
                      {"id": "end", "name": "结束", "type": "end"}],
            "edges": [{"from": "start", "to": "fix"}, {"from": "fix", "to": "end"}]}

    def start_with_flow(self):
        s = Server()
        s.start()
        self.addCleanup(s.cleanup)
        status, r, _ = s.call("PUT", "/api/v1/flows/rr", self.FLOW, token=ADMIN_TOKEN)
        self.assertEqual(status, 201, r)
        return s

    def test_round_robin_is_stable_across_restart_and_rebuild(self):
        s = self.start_with_flow()

        def pick():
            status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "rr",
                                                             "fields": SUBMISSION}, token=s.login("li"))
            self.assertEqual(status, 201, r)
            return r["ticket"]["assignees"]

        self.assertEqual(pick(), [{"user": "qian"}])
        self.assertEqual(pick(), [{"user": "zhao"}])
        s.stop()
        s.start()
        self.assertEqual(pick(), [{"user": "qian"}])
        s.proc.kill()  # no snapshot at exit: the turn comes back from the log
        s.proc.wait()
        s.proc = None
        run = lambda *a: subprocess.run([TICKETCTL] + list(a), capture_output=True, check=True).stdout
        before = run("dump-views", "--data-dir", s.data_dir)
        self.assertIn(b'"last_pick":"engineer","user":"qian"', before)
        run("rebuild", "--data-dir", s.data_dir)
        self.assertEqual(run("dump-views", "--data-dir", s.data_dir), before)
        s.start()
        self.assertEqual(pick(), [{"user": "zhao"}])
        # Only the picked engineer holds the to-do.
        status, inbox, _ = s.call("GET", "/api/v1/inbox", token=s.login("qian"))
        self.assertEqual(len(inbox["items"]), 2)

    def test_round_robin_under_concurrent_submits_takes_turns(self):
        # Submits racing into the picking node each take the next turn: none reads a turn another
        # has taken but the read model has not applied yet.
        s = self.start_with_flow()
        token = s.login("li")
        picks = []
        lock = threading.Lock()

        def submit_some():
            for _ in range(6):
                status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "rr",
                                                                 "fields": SUBMISSION}, token=token)
                self.assertEqual(status, 201, r)
                with lock:
                    picks.append(r["ticket"]["assignees"][0]["user"])

        threads = [threading.Thread(target=submit_some) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(picks), 48)
        self.assertEqual((picks.count("qian"), picks.count("zhao")), (24, 24), picks)

    def test_least_loaded_under_concurrent_submits_counts_picks_not_yet_applied(self):
        # zhao is left with nothing and qian with four open tickets; eight submits then race into
        # a least-loaded node. Each must count the tickets the others handed out a moment before
        # (not yet in the read model's counts): zhao takes four, then they alternate.
        s = Server()
        s.start()
        self.addCleanup(s.cleanup)
        flow = json.loads(json.dumps(self.FLOW))
        flow["nodes"][1]["assignee"]["pick"] = "least_loaded"
        status, r, _ = s.call("PUT", "/api/v1/flows/ll", flow, token=ADMIN_TOKEN)
        self.assertEqual(status, 201, r)
        token = s.login("li")

        def submit():
            status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "ll",
                                                             "fields": SUBMISSION}, token=token)
            self.assertEqual(status, 201, r)
            return r["ticket"]["id"], r["ticket"]["assignees"][0]["user"]

        first = [submit() for _ in range(8)]
        self.assertEqual(sorted(user for _, user in first), ["qian"] * 4 + ["zhao"] * 4)
        zhao = s.login("zhao")
        for tid, user in first:
            if user == "zhao":
                status, r, _ = s.call("POST", f"/api/v1/tickets/{tid}/actions", {"action": "submit"},
                                      token=zhao)
                self.assertEqual(status, 200, r)
        picks = []
        lock = threading.Lock()
        barrier = threading.Barrier(8)

        def race():
            barrier.wait()
            _, user = submit()
            with lock:
                picks.append(user)

        threads = [threading.Thread(target=race) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual((picks.count("zhao"), picks.count("qian")), (6, 2), picks)


if __name__ == "__main__":
    unittest.main()
