"""kill -9 of the server under concurrent submissions, five times: nothing acknowledged is lost."""
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import ADMIN_TOKEN, Server  # noqa: E402

TICKETCTL = os.environ.get("TICKETCTL_BIN", "build/tools/ticketctl")
SUBMISSION = {"customer_phone": "+86 138 1234 5678", "channel": "电话", "problem_type": "功能故障",
              "description": "打印机卡纸"}


class KillNineUnderLoad(unittest.TestCase):
    def test_five_kills_lose_nothing_acknowledged(self):
        s = Server(extra_args=["--rate-limit", "0"]).start()  # durability, not throttling, is tested
        try:
            acked = {}  # ticket id -> customer name, for every 201 the clients saw
            lock = threading.Lock()
            for round_no in range(5):
                token = s.login("li")
                stop = threading.Event()

                def client(k):
                    n = 0
                    while not stop.is_set():
                        name = "崩溃%d-%d-%d" % (round_no, k, n)
                        n += 1
                        status, r, _ = s.call("POST", "/api/v1/tickets",
                                              {"form": "service_ticket", "flow": "service_flow",
                                               "fields": {**SUBMISSION, "customer_name": name}}, token=token)
                        if status == 201:
                            with lock:
                                acked[r["id"]] = name
                        elif status != 0:  # 0: the connection died with the server
                            raise AssertionError((status, r))

                clients = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
                for c in clients:
                    c.start()
                # Kill once this round has had a good number of acknowledgements (no fixed sleep).
                target = len(acked) + 150
                end = time.monotonic() + 60
                while len(acked) < target and time.monotonic() < end:
                    time.sleep(0.01)
                s.proc.kill()
                s.proc.wait()
                s.proc = None
                stop.set()
                for c in clients:
                    c.join(timeout=30)
                s.start()
                missing = []
                for tid, name in list(acked.items()):
                    status, view, _ = s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)
                    if status != 200 or view["fields"]["customer_name"] != name:
                        missing.append((tid, status))
                self.assertEqual(missing, [], "round %d: acknowledged tickets lost" % round_no)
                status, verify, _ = s.call("GET", "/api/v1/audit/verify", token=ADMIN_TOKEN)
                self.assertTrue(verify["ok"], verify)
            self.assertGreaterEqual(len(acked), 5 * 150)
            s.stop()
            verify = subprocess.run([TICKETCTL, "verify", "--data-dir", s.data_dir], capture_output=True,
                                    text=True, check=True).stdout
            self.assertTrue(verify.startswith("ok "), verify)
            views = subprocess.run([TICKETCTL, "dump-views", "--data-dir", s.data_dir], capture_output=True,
                                   check=True).stdout
            subprocess.run([TICKETCTL, "rebuild", "--data-dir", s.data_dir], capture_output=True, check=True)
            rebuilt = subprocess.run([TICKETCTL, "dump-views", "--data-dir", s.data_dir], capture_output=True,
                                     check=True).stdout
            self.assertEqual(views, rebuilt)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
