"""Writes tests/fixtures/stored_events_<date>.jsonl: the log of a real server after the reference
application's life (both branches, a reject, a transfer, the portal, a rating, a comment, a form
version, a lookup rule, an answered lookup and a failed one), as `ticketctl dump` prints it.

The fixture is made once and kept: later builds must read these events as they are (DESIGN.md:
"old events stay readable forever"), which tests/stored_events_test.cpp checks. Run it only to
add a new fixture beside the old ones, never to replace one:

    TICKETD_BIN=build/server/ticketd TICKETCTL_BIN=build/tools/ticketctl \\
        /usr/bin/python3 tests/blackbox/make_stored_events.py tests/fixtures/stored_events_YYYY_MM.jsonl
"""
import os
import subprocess
import sys
import time

from test_api import SUBMISSION
from test_lookup import Crm, RULE, TOKEN
from ticketd_server import ADMIN_TOKEN, Server

TICKETCTL = os.environ.get("TICKETCTL_BIN", "build/tools/ticketctl")


def main(out):
    crm = Crm()
    s = Server(extra_args=["--lookup-sources", "crm=http://127.0.0.1:%d/api" % crm.server_address[1],
                           "--lookup-tokens", "crm=" + TOKEN, "--lookup-attempts", "1"]).start()
    try:
        tokens = {u: s.login(u) for u in ["zhang", "li", "wang", "zhao", "qian"]}

        def call(method, path, body=None, user=None, expect=(200, 201)):
            token = ADMIN_TOKEN if user == "admin" else tokens.get(user)
            status, r, _ = s.call(method, "/api/v1" + path, body, token=token)
            assert status in expect, (method, path, status, r)
            return r

        def submit(**fields):
            return call("POST", "/tickets", {"form": "service_ticket", "flow": "service_flow",
                                             "fields": dict(SUBMISSION, **fields)}, user="li")

        def act(tid, user, action, fields=None, **extra):
            body = dict({"action": action}, **extra)
            if fields:
                body["fields"] = fields
            return call("POST", "/tickets/%s/actions" % tid, body, user=user)

        # The simple branch, through the portal, rated.
        t = submit()
        act(t["id"], "zhang", "approve", {"complexity": "简单"}, comment="客服处理即可")
        call("POST", "/tickets/%s/comments" % t["id"], {"text": "已电话联系客户"}, user="li")
        act(t["id"], "li", "submit", {"solution": "已远程指导清理进纸辊。"})
        call("POST", "/portal/tickets/%s/confirm?code=%s" % (t["id"], t["portal_code"]), {})
        call("POST", "/portal/tickets/%s/rating?code=%s" % (t["id"], t["portal_code"]),
             {"score": 5, "comment": "很满意"})

        # The complex branch: a reject, a dispatch at high priority, a transfer, closed for the
        # customer by an administrator (the SLA figures recorded with the close).
        t = submit()
        act(t["id"], "zhang", "approve", {"complexity": "复杂"})
        act(t["id"], "wang", "reject", comment="信息不全")
        act(t["id"], "zhang", "approve")
        act(t["id"], "wang", "approve", {"engineer": "zhao", "priority": "高"})
        act(t["id"], "zhao", "transfer", to="qian", comment="出差")
        act(t["id"], "qian", "submit", {"solution": "更换搓纸轮后测试正常。"})
        act(t["id"], "admin", "approve", comment="代客户确认")

        # A form version with two more fields, a lookup rule that fills them, an answered lookup
        # and one the CRM does not know.
        form = call("GET", "/forms/service_ticket", user="admin")
        document = {k: v for k, v in form.items() if k not in ("id", "version")}
        document["fields"] += [
            {"key": "customer_level", "label": "客户等级", "type": "select", "options": ["普通", "VIP"]},
            {"key": "customer_history", "label": "客户历史", "type": "textarea"}]
        call("PUT", "/forms/service_ticket", document, user="admin")
        call("PUT", "/rules/crm_lookup", RULE, user="admin")
        answered = submit()["id"]
        unknown = submit(customer_name="没有档案的客户")["id"]
        for tid, kind in ((answered, "LookupCompleted"), (unknown, "LookupFailed")):
            deadline = 300
            while deadline and not [e for e in call("GET", "/tickets/%s/events" % tid, user="admin")["items"]
                                    if e["type"] == kind]:
                deadline -= 1
                time.sleep(0.05)
            assert deadline, "no " + kind
    finally:
        s.stop()
    dump = subprocess.run([TICKETCTL, "dump", "--data-dir", s.data_dir], capture_output=True,
                          check=True, text=True).stdout
    with open(out, "w", encoding="utf-8") as f:
        f.write(dump)
    s.cleanup()
    crm.shutdown()
    print("%s: %d events" % (out, dump.count("\n")))


if __name__ == "__main__":
    main(sys.argv[1])
