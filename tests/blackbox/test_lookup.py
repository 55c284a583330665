"""Look-ups into a CRM against the real binary: a rule's lookup action asks a local HTTP server when
a ticket is created and fills the ticket's fields from the answer; refusals and misfits are recorded
as failures, outages are retried, and a lookup pending at a kill -9 is asked after the restart."""
import http.server
import json
import subprocess
import threading
import unittest
import urllib.parse

from ticketd_server import ADMIN_TOKEN, Server
from test_api import SUBMISSION, TICKETCTL, wait_for

CUSTOMERS = {
    SUBMISSION["customer_name"]: {"level": "VIP", "history": {"tickets": 3, "last": "2026-10-01 更换主板"}},
    "钻石客户": {"level": "钻石", "history": {"last": "无"}},  # a level the form has no option for
}


TOKEN = "s3cret-token"


class Crm(http.server.ThreadingHTTPServer):
    """GET /api/customers?name=…: the customer's record, or 404; 401 without the bearer TOKEN.
    `answers` are given in turn first (a status, or "hang" until `release` is set)."""

    def __init__(self):
        self.asked = []
        self.answers = []
        self.release = threading.Event()
        outer = self

        self.connections = set()  # the client ports asked from: one per connection kept alive

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                outer.asked.append((url.path, query))
                outer.connections.add(self.client_address[1])
                status = outer.answers.pop(0) if outer.answers else None
                if self.headers.get("Authorization") != "Bearer " + TOKEN:
                    status = 401
                if status == "hang":
                    outer.release.wait(60)
                    status = None
                name = query.get("name")
                if url.path.startswith("/api/customers/by-name/"):  # the name in the path instead
                    name = urllib.parse.unquote(url.path[len("/api/customers/by-name/"):])
                record = CUSTOMERS.get(name)
                if status is None:
                    status = 200 if url.path.startswith("/api/customers") and record else 404
                body = json.dumps(record if status == 200 else {"error": "no such customer"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.daemon_threads = True
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


RULE = {"name": "查询客户档案", "form": "service_ticket", "trigger": {"type": "created"},
        "actions": [{"type": "lookup", "source": "crm", "path": "/customers",
                     "query": {"name": "{{fields.customer_name}}", "ticket": "{{ticket.id}}"},
                     "fill": {"customer_level": "/level", "customer_history": "/history/last"}}]}


class Lookups(unittest.TestCase):
    def setUp(self):
        self.crm = Crm()
        self.addCleanup(self.crm.shutdown)
        self.addCleanup(self.crm.release.set)
        self.s = Server(extra_args=[
            "--lookup-sources", "crm=http://127.0.0.1:%d/api" % self.crm.server_address[1],
            "--lookup-tokens", "crm=" + TOKEN, "--lookup-retry", "1", "--lookup-attempts", "3"])
        self.s.start()
        self.addCleanup(self.s.cleanup)
        # The form gets the two fields the CRM fills.
        _, form, _ = self.s.call("GET", "/api/v1/forms/service_ticket", token=ADMIN_TOKEN)
        document = {k: v for k, v in form.items() if k not in ("id", "version")}
        document["fields"] += [
            {"key": "customer_level", "label": "客户等级", "type": "select", "options": ["普通", "VIP"]},
            {"key": "customer_history", "label": "客户历史", "type": "textarea"}]
        status, r, _ = self.s.call("PUT", "/api/v1/forms/service_ticket", document, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, r)
        status, r, _ = self.s.call("PUT", "/api/v1/rules/crm_lookup", RULE, token=ADMIN_TOKEN)
        self.assertEqual(status, 201, r)
        self.li = self.s.login("li")

    def submit(self, **fields):
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": dict(SUBMISSION, **fields)},
            token=self.li)
        self.assertEqual(status, 201, r)
        return r["id"]

    def events(self, tid, *types):
        _, r, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % tid, token=ADMIN_TOKEN)
        return [e for e in r["items"] if not types or e["type"] in types]

    def fields(self, tid):
        return self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)[1]["fields"]

    def test_the_answer_fills_the_fields_and_is_recorded(self):
        tid = self.submit()
        wait_for(lambda: self.fields(tid).get("customer_level") == "VIP", what="the CRM's level")
        self.assertEqual(self.fields(tid)["customer_history"], "2026-10-01 更换主板")
        # Asked with the ticket's values, percent-encoded on the way and decoded by the CRM.
        self.assertEqual(self.crm.asked, [("/api/customers", {"name": SUBMISSION["customer_name"], "ticket": tid})])
        requested, = self.events(tid, "LookupRequested")
        self.assertEqual(requested["data"]["source"], "crm")
        self.assertEqual(requested["data"]["query"], {"name": SUBMISSION["customer_name"], "ticket": tid})
        completed, = self.events(tid, "LookupCompleted")
        self.assertEqual(completed["data"]["lookup"], requested["version"])
        self.assertEqual(completed["data"]["filled"], ["customer_level", "customer_history"])
        changed = [e for e in self.events(tid, "FieldsChanged") if e["data"].get("rule") == "crm_lookup"]
        self.assertEqual(changed[0]["data"]["fields"],
                         {"customer_level": "VIP", "customer_history": "2026-10-01 更换主板"})
        self.assertEqual(changed[0]["actor"], "system")
        metrics = self.s.call("GET", "/metrics", token=ADMIN_TOKEN)[1]
        self.assertIn("ticketd_lookups_answered_total 1\n", metrics)
        # The auditor's timeline tells it in words.
        timeline = subprocess.run([TICKETCTL, "replay", "--data-dir", self.s.data_dir, "--ticket", tid],
                                  capture_output=True, check=True, text=True).stdout
        self.assertIn("rule crm_lookup asked crm /customers with name = %s, ticket = %s (lookup %d)"
                      % (SUBMISSION["customer_name"], tid, requested["version"]), timeline)
        self.assertIn("lookup %d answered, filling customer_level, customer_history" % requested["version"],
                      timeline)

    def test_a_dry_run_counts_the_lookups_a_rule_would_ask_without_asking(self):
        self.crm.answers = [404, 404]
        self.submit()
        self.submit(customer_name="钻石客户")
        wait_for(lambda: len(self.crm.asked) == 2, what="the two live lookups")
        status, run, _ = self.s.call("POST", "/api/v1/rules/crm_lookup/dry-run", None, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, run)
        self.assertEqual(run["summary"]["lookups"], 2)
        self.assertEqual(run["hits"][0]["actions"][0]["type"], "LookupRequested")
        self.assertEqual(len(self.crm.asked), 2)  # a dry-run asks nobody

    def test_a_path_template_carries_the_tickets_value_percent_encoded(self):
        rule = json.loads(json.dumps(RULE))
        rule["actions"][0]["path"] = "/customers/by-name/{{fields.customer_name}}"
        rule["actions"][0]["query"] = {}
        status, r, _ = self.s.call("PUT", "/api/v1/rules/crm_lookup", rule, token=ADMIN_TOKEN)
        self.assertEqual(status, 200, r)
        tid = self.submit(customer_name="华东精密机械有限公司")
        wait_for(lambda: self.fields(tid).get("customer_level") == "VIP", what="the CRM's level")
        path, query = self.crm.asked[-1]
        self.assertEqual(path, "/api/customers/by-name/" + urllib.parse.quote(SUBMISSION["customer_name"]))
        self.assertEqual(query, {})

    def test_a_rule_naming_a_source_the_server_does_not_have_is_refused(self):
        rule = json.loads(json.dumps(RULE))
        rule["actions"][0]["source"] = "erp"
        status, r, _ = self.s.call("PUT", "/api/v1/rules/erp_lookup", rule, token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        self.assertEqual(r["error"]["code"], "invalid_definition")
        self.assertIn('"erp"', r["error"]["message"])
        self.assertIn("crm", r["error"]["message"])
        rule["actions"][0]["source"] = "crm"
        rule["actions"][0]["fill"] = {"attachments": "/files"}
        status, r, _ = self.s.call("PUT", "/api/v1/rules/erp_lookup", rule, token=ADMIN_TOKEN)
        self.assertEqual(status, 422, r)
        self.assertIn("rule.actions[0].fill.attachments", r["error"]["message"])

    def test_refusals_fail_at_once_outages_are_retried(self):
        unknown = self.submit(customer_name="没有档案的客户")
        failed, = wait_for(lambda: self.events(unknown, "LookupFailed"), what="a failure")
        self.assertIn("HTTP 404", failed["data"]["error"])
        self.assertEqual(len(self.crm.asked), 1)  # a 404 is not asked again
        self.assertNotIn("customer_level", self.fields(unknown))

        self.crm.answers = [503, 503]  # down for two attempts, the third (--lookup-attempts 3) answers
        tid = self.submit()
        wait_for(lambda: self.events(tid, "LookupCompleted"), what="the answer after two retries")
        self.assertEqual(len(self.crm.asked), 1 + 3)
        self.assertEqual(self.events(tid, "LookupFailed"), [])
        # Four requests from two fetchers, each keeping its connection alive.
        self.assertLessEqual(len(self.crm.connections), 2)
        self.assertEqual(self.fields(tid)["customer_level"], "VIP")

        self.crm.answers = [503] * 3  # given up after the third attempt
        gone = self.submit()
        failed, = wait_for(lambda: self.events(gone, "LookupFailed"), what="a failure after three attempts")
        self.assertIn("HTTP 503", failed["data"]["error"])
        self.assertIn("after 3 attempts", failed["data"]["error"])

    def test_an_answer_the_form_refuses_is_a_failure_and_changes_nothing(self):
        tid = self.submit(customer_name="钻石客户")
        failed, = wait_for(lambda: self.events(tid, "LookupFailed"), what="a failure")
        self.assertIn("does not fit the form", failed["data"]["error"])
        self.assertIn("customer_level", failed["data"]["error"])
        self.assertNotIn("customer_history", self.fields(tid))  # all or nothing

    def test_a_hanging_source_holds_up_one_lookup_only(self):
        self.crm.answers = ["hang"]
        held = self.submit()
        wait_for(lambda: self.crm.asked, what="the lookup under way")
        tid = self.submit()  # the second fetcher asks meanwhile
        wait_for(lambda: self.events(tid, "LookupCompleted"), what="the other lookup's answer")
        self.assertEqual(self.events(held, "LookupCompleted"), [])
        self.crm.release.set()
        wait_for(lambda: self.events(held, "LookupCompleted"), what="the held one, once released")

    def test_a_pending_lookup_is_asked_after_kill_9(self):
        self.crm.answers = ["hang"]
        tid = self.submit()
        wait_for(lambda: self.crm.asked, what="the lookup under way")
        requested, = self.events(tid, "LookupRequested")
        view = self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)[1]
        self.assertEqual(view["lookups_pending"], [requested["version"]])
        self.s.proc.kill()
        self.s.proc.wait()
        self.crm.release.set()  # the CRM answers the abandoned GET, to nobody
        self.s.start()
        wait_for(lambda: self.events(tid, "LookupCompleted"), what="the answer after the restart")
        self.assertEqual(len(self.crm.asked), 2)
        self.assertEqual(self.fields(tid)["customer_level"], "VIP")
        self.assertNotIn("lookups_pending", self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)[1])
        # Answered once: a restart does not ask again.
        self.s.stop()
        self.s.start()
        # A start without the source says which rule's lookups will wait.
        self.s.stop()
        args = self.s.extra_args
        self.s.extra_args = []
        self.s.start()
        wait_for(lambda: any("rule crm_lookup asks lookup source crm" in line for line in self.s.output),
                 what="the warning")
        self.s.stop()
        self.s.extra_args = args
        self.s.start()
        self.submit()  # something after it in the log, so the worker has read past it
        wait_for(lambda: len(self.crm.asked) == 3, what="the next ticket's lookup")
        self.assertEqual(len(self.events(tid, "LookupCompleted")), 1)


if __name__ == "__main__":
    unittest.main()
