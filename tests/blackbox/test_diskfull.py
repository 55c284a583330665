"""The data directory's disk fills up: commands answer 503, nothing acknowledged is lost, the log
stays valid, and the server recovers by itself when space returns.

Needs a small tmpfs, so root and a machine that allows mounting; skipped (saying why) otherwise."""
import os
import re
import subprocess
import tempfile
import unittest

from ticketd_server import ADMIN_TOKEN, LOAD, TICKETCTL, Server, read_acked
from test_api import SUBMISSION, wait_for



def try_mount(path, size):
    if os.geteuid() != 0:
        return "not root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path], capture_output=True)
    return None if r.returncode == 0 else "mount failed: " + r.stderr.decode().strip()


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.mount = tempfile.mkdtemp(prefix="ticketd-full-")
        why = try_mount(self.mount, "96m")
        if why:
            os.rmdir(self.mount)
            self.skipTest("no tmpfs for the disk-full test (%s)" % why)
        self.addCleanup(lambda: (subprocess.run(["umount", "-l", self.mount]), os.rmdir(self.mount)))
        self.data = os.path.join(self.mount, "data")
        self.s = Server(data_dir=self.data, extra_args=["--rate-limit", "0", "--min-free-mb", "4"])
        self.s.start()
        self.addCleanup(lambda: self.s.stop(expect_clean=False) if self.s.proc else None)
        self.li = self.s.login("li")

    def fill(self):
        """Takes every free byte of the tmpfs."""
        path = os.path.join(self.mount, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return path

    def submit(self, n):
        body = {"form": "service_ticket", "flow": "service_flow",
                "fields": {**SUBMISSION, "description": "满" * 1500 + str(n)}}
        return self.s.call("POST", "/api/v1/tickets", body, token=self.li)

    def test_full_disk_refuses_loses_nothing_and_recovers(self):
        acknowledged = []
        for i in range(20):
            status, r, _ = self.submit(i)
            self.assertEqual(status, 201, r)
            acknowledged.append(r["id"])
        filler = self.fill()
        refused = 0
        for i in range(20, 3000):
            status, r, _ = self.submit(i)
            if status == 201:
                acknowledged.append(r["id"])
                continue
            self.assertEqual(status, 503, r)
            self.assertEqual(r["error"]["code"], "unavailable", r)
            self.assertIn("space", r["error"]["message"].lower(), r)
            refused += 1
            if refused >= 5:
                break
        self.assertGreaterEqual(refused, 5, "the disk never filled up")
        # Still serving reads meanwhile.
        status, _, _ = self.s.call("GET", "/healthz")
        self.assertEqual(status, 200)
        status, r, _ = self.s.call("GET", "/api/v1/tickets/" + acknowledged[-1], token=ADMIN_TOKEN)
        self.assertEqual(status, 200, r)
        # Space returns: the server takes commands again without a restart.
        os.remove(filler)
        late = wait_for(lambda: (lambda s_r: s_r[1]["id"] if s_r[0] == 201 else None)(self.submit(9999)[:2]),
                        what="a submit to succeed once space returned")
        acknowledged.append(late)
        # Nothing acknowledged is lost, across a restart too; the log verifies.
        self.s.stop()
        out = subprocess.run([TICKETCTL, "verify", "--data-dir", self.data], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertTrue(out.stdout.startswith("ok events="), out.stdout)
        self.s.start()
        for tid in acknowledged:
            status, r, _ = self.s.call("GET", "/api/v1/tickets/" + tid, token=ADMIN_TOKEN)
            self.assertEqual(status, 200, (tid, r))

    def test_the_disk_fills_under_the_submit_benchmark(self):
        """64 connections at full speed while the disk fills: refusals are 503s, every answer
        acknowledged before, during and after survives, and commands resume by themselves."""
        acked_file = self.mount + "-acked"
        self.addCleanup(lambda: os.path.exists(acked_file) and os.remove(acked_file))
        load = subprocess.Popen([LOAD, "submit", "--url", self.s.base, "--connections", "64",
                                 "--seconds", "300", "--acked", acked_file],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: load.poll() is None and load.kill())
        wait_for(lambda: self.s.metric("ticketd_log_position") > 2000, what="the load to be under way")
        filler = self.fill()
        wait_for(lambda: self.s.metric('ticketd_http_responses_total{class="5xx"}') >= 50, what="503s from the full disk")
        self.assertEqual(self.s.call("GET", "/healthz")[0], 200)
        os.remove(filler)
        # Space is back: the load's submissions go through again without a restart (the log's
        # position moves on), and once they do, none is refused.
        before = self.s.metric("ticketd_log_position")
        wait_for(lambda: self.s.metric("ticketd_log_position") > before + 2000, what="submissions once space returned")
        refused, resumed = self.s.metric('ticketd_http_responses_total{class="5xx"}'), self.s.metric("ticketd_log_position")
        wait_for(lambda: self.s.metric("ticketd_log_position") > resumed + 2000, what="more submissions")
        self.assertEqual(self.s.metric('ticketd_http_responses_total{class="5xx"}'), refused)
        load.terminate()  # SIGTERM: the generator stops where it is and writes what was acked
        out, err = load.communicate(timeout=60)
        statuses = dict(re.findall(r"^status_(\d+)=(\d+)$", out, re.M))
        self.assertEqual(set(statuses) - {"201", "503"}, set(), out + err[-2000:])
        self.assertTrue(os.path.exists(acked_file), out + err[-2000:])
        acked = read_acked(acked_file)
        self.assertGreater(len(acked), 500)
        self.s.stop()
        out = subprocess.run([TICKETCTL, "verify", "--data-dir", self.data], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.s.start()
        lost = self.s.missing_tickets(acked)
        self.assertEqual(lost[:20], [], "%d of %d acknowledged tickets lost" % (len(lost), len(acked)))


if __name__ == "__main__":
    unittest.main()
