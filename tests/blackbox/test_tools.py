"""The benchmark tools against a real server: what ticketd-load reports of the server's CPU."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import LOAD, Server  # noqa: E402



class LoadGenerator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(extra_args=["--rate-limit", "0"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def load(self, *args):
        return subprocess.run([LOAD, *args, "--url", self.s.base], capture_output=True, text=True,
                              timeout=120)

    def test_the_servers_cpu_a_request_by_thread(self):
        run = self.load("submit", "--connections", "8", "--seconds", "2",
                        "--server-pid", str(self.s.proc.pid))
        self.assertEqual(run.returncode, 0, run.stderr)
        lines = dict(line.split("=", 1) for line in run.stdout.splitlines())
        by_thread = {m.group(1): float(v) for k, v in lines.items()
                     if (m := re.fullmatch(r"server_cpu_us_per_request\{(.+)\}", k))}
        # The threads every submission passes through, by the names the server gives them.
        for thread in ("http-io", "log-writer", "log-indexer", "log-subscriber"):
            self.assertIn(thread, by_thread, run.stdout)
        self.assertGreater(by_thread["log-writer"], 0, run.stdout)
        total = float(lines["server_cpu_us_per_request"])
        self.assertGreater(total, 0, run.stdout)
        self.assertAlmostEqual(sum(by_thread.values()), total, delta=0.05 * len(by_thread) + 0.1)
        # A server that is not there is said before any load is sent.
        run = self.load("submit", "--seconds", "1", "--server-pid", "999999999")
        self.assertEqual(run.returncode, 2)
        self.assertIn("/proc/999999999/task", run.stderr)
        self.assertNotIn("requests=", run.stdout)
        # Fan-out reports delivery, not the server's CPU: the option is refused there.
        run = self.load("fanout", "--server-pid", str(self.s.proc.pid))
        self.assertEqual(run.returncode, 2)
        self.assertIn("usage", run.stderr)


if __name__ == "__main__":
    unittest.main()
