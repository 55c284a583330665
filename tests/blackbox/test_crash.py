"""kill -9 of the server under concurrent submissions, five times: nothing acknowledged is lost."""
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import ADMIN_TOKEN, LOAD, TICKETCTL, Server, read_acked  # noqa: E402

# Events appended in a round of the benchmark's load before its kill: a short form for every run,
# the long one (TICKETD_LONG_FAULTS=1, README) ten times as many, one to three seconds of load each.
ROUND_EVENTS = 80000 if os.environ.get("TICKETD_LONG_FAULTS") == "1" else 8000
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
                self.assert_restarted_with(s, dict(acked), round_no)
            self.assertGreaterEqual(len(acked), 5 * 150)
            self.assert_stopped_log_verifies_and_rebuilds_alike(s)
        finally:
            s.cleanup()

    def test_five_kills_under_the_submit_benchmark_lose_nothing_acknowledged(self):
        """The benchmark's own load (ticketd-load submit, 64 connections, closed loop) killed at
        full speed: group commits of up to 64, the indexer and the read model behind the writer."""
        s = Server(extra_args=["--rate-limit", "0"]).start()
        acked = {}
        acked_file = s.data_dir + "-acked"
        load = None
        try:
            for round_no in range(5):
                first = s.metric("ticketd_log_position")
                load = subprocess.Popen([LOAD, "submit", "--url", s.base, "--connections", "64",
                                         "--seconds", "300", "--acked", acked_file],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                # Killed at a different point of each round, once the load is well under way.
                target = first + ROUND_EVENTS * (round_no + 2) // 4
                end = time.monotonic() + 120
                while load.poll() is None and time.monotonic() < end:
                    if s.metric("ticketd_log_position") >= target:
                        break
                    time.sleep(0.005)
                if load.poll() is not None:
                    self.fail("the load ended before the kill: " + load.communicate()[1][-2000:])
                s.proc.kill()
                s.proc.wait()
                out, err = load.communicate(timeout=60)
                self.assertIn("acked=", out, err[-2000:])
                round_acked = read_acked(acked_file)
                self.assertGreater(len(round_acked), ROUND_EVENTS // 64, out)  # the load ran
                acked.update(round_acked)
                s.start()
                self.assert_restarted_with(s, acked, round_no)
            self.assert_stopped_log_verifies_and_rebuilds_alike(s)
        finally:
            if load is not None and load.poll() is None:
                load.kill()  # a round that failed: its load must not outlive the test
                load.wait()
            s.cleanup()
            if os.path.exists(acked_file):
                os.remove(acked_file)

    def assert_restarted_with(self, s, acked, round_no):
        """After a restart: every acknowledged ticket there with the customer name sent, and the
        chain whole."""
        missing = s.missing_tickets(acked)
        self.assertEqual(missing[:20], [], "round %d: %d of %d acknowledged tickets lost" %
                         (round_no, len(missing), len(acked)))
        status, verify, _ = s.call("GET", "/api/v1/audit/verify", token=ADMIN_TOKEN)
        self.assertTrue(verify["ok"], verify)

    def assert_stopped_log_verifies_and_rebuilds_alike(self, s):
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


if __name__ == "__main__":
    unittest.main()
