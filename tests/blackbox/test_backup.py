"""Backups of a running server: a copy of the log that verifies, and that another server starts
on with every ticket acknowledged before it."""
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from ticketd_server import ADMIN_TOKEN, TICKETCTL, Server
from test_api import SUBMISSION



class Backups(unittest.TestCase):
    def submit(self, s, token):
        status, r, _ = s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                          "fields": SUBMISSION}, token=token)
        self.assertEqual(status, 201, r)
        return r["id"]

    def test_a_backup_of_a_running_server_is_a_data_directory_of_its_own(self):
        s = Server()
        s.start()
        self.addCleanup(s.cleanup)
        li = s.login("li")
        before = [self.submit(s, li) for _ in range(3)]
        status, r, _ = s.call("POST", "/api/v1/backups", token=li)
        self.assertEqual((status, r["error"]["code"]), (403, "forbidden"), r)

        status, backup, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual(status, 201, backup)
        self.assertTrue(backup["path"].startswith(os.path.join(s.data_dir, "backups", "ticketd-")), backup)
        self.assertGreaterEqual(backup["position"], s.call("GET", "/healthz")[1]["position"] - 1)
        after = self.submit(s, li)  # the server goes on; the backup does not have this one

        verify = subprocess.run([TICKETCTL, "verify", "--data-dir", backup["path"]], capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertIn("ok events=%d head=%s" % (backup["position"], backup["head"]), verify.stdout)

        copy = Server(data_dir=backup["path"], demo=False)
        copy.start()
        self.addCleanup(copy.cleanup)
        self.assertEqual(copy.call("GET", "/healthz")[1]["position"], backup["position"])
        token = copy.login("li")
        for tid in before:
            self.assertEqual(copy.call("GET", "/api/v1/tickets/" + tid, token=token)[0], 200, tid)
        self.assertEqual(copy.call("GET", "/api/v1/tickets/" + after, token=token)[0], 404)

        # A second backup in the same second gets a name of its own.
        status, second, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual(status, 201, second)
        self.assertNotEqual(second["path"], backup["path"])

        # The list, newest first, and pruning it.
        status, listed, _ = s.call("GET", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual(status, 200, listed)
        self.assertEqual([(b["name"], b["position"], b["head"]) for b in listed["items"]],
                         [(second["name"], second["position"], second["head"]),
                          (backup["name"], backup["position"], backup["head"])])
        status, page, _ = s.call("GET", "/api/v1/backups?limit=1", token=ADMIN_TOKEN)
        status, rest, _ = s.call("GET", "/api/v1/backups?limit=1&cursor=" + page["next_cursor"],
                                 token=ADMIN_TOKEN)
        self.assertEqual([b["name"] for b in page["items"] + rest["items"]], [second["name"], backup["name"]])
        self.assertEqual(s.call("GET", "/api/v1/backups", token=li)[0], 403)
        for name in ("..", "ticketd-..", "log"):
            status, r, _ = s.call("DELETE", "/api/v1/backups/" + name, token=ADMIN_TOKEN)
            self.assertEqual((status, r["error"]["code"]), (404, "not_found"), (name, r))
        status, r, _ = s.call("DELETE", "/api/v1/backups/" + second["name"], token=ADMIN_TOKEN)
        self.assertEqual((status, r["deleted"]), (200, True), r)
        self.assertFalse(os.path.exists(second["path"]))
        self.assertEqual(s.call("DELETE", "/api/v1/backups/" + second["name"], token=ADMIN_TOKEN)[0], 404)
        listed = s.call("GET", "/api/v1/backups", token=ADMIN_TOKEN)[1]
        self.assertEqual([b["name"] for b in listed["items"]], [backup["name"]])
        self.assertTrue(os.path.exists(os.path.join(s.data_dir, "log")))  # the live log untouched

    def test_the_data_and_its_backups_are_the_server_users_alone(self):
        root = tempfile.mkdtemp(prefix="ticketd-perm-")
        self.addCleanup(shutil.rmtree, root, True)
        s = Server(data_dir=os.path.join(root, "new"))
        s.start()
        self.addCleanup(s.cleanup)
        self.assertEqual(stat.S_IMODE(os.stat(s.data_dir).st_mode), 0o700)
        status, backup, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual(status, 201, backup)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(backup["path"])).st_mode), 0o700)
        # A directory it is given keeps its mode; wider access is said at the start.
        open_dir = os.path.join(root, "open")
        os.mkdir(open_dir, 0o755)
        os.chmod(open_dir, 0o755)
        t = Server(data_dir=open_dir, demo=False)
        t.start()
        self.addCleanup(t.cleanup)
        self.assertEqual(stat.S_IMODE(os.stat(open_dir).st_mode), 0o755)
        self.assertTrue(any("can be read by other users" in line for line in t.output), "".join(t.output))

    def test_only_the_newest_are_kept_when_asked(self):
        s = Server(extra_args=["--backup-keep", "2"])
        s.start()
        self.addCleanup(s.cleanup)
        made = []
        # One after another, each asked for as soon as the one before is answered: a backup that
        # is answered is done, and the next one is made (not 409 "a backup is being made").
        for _ in range(8):
            status, b, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
            self.assertEqual(status, 201, b)
            made.append(b)
        listed = s.call("GET", "/api/v1/backups", token=ADMIN_TOKEN)[1]
        self.assertEqual([b["name"] for b in listed["items"]], [made[7]["name"], made[6]["name"]])
        kept = {made[7]["path"], made[6]["path"]}  # a name freed in the same second is used again
        self.assertFalse(any(os.path.exists(b["path"]) for b in made[:6] if b["path"] not in kept))
        bad = Server(extra_args=["--backup-keep", "some"])
        self.addCleanup(bad.cleanup)
        with self.assertRaises(RuntimeError) as e:
            bad.start()
        self.assertIn("--backup-keep must be", str(e.exception))

    def test_a_backup_a_crash_cut_short_is_cleared_away_later(self):
        s = Server()
        s.start()
        self.addCleanup(s.cleanup)
        backups = os.path.join(s.data_dir, "backups")
        cut_short, in_the_making, not_ours = (os.path.join(backups, n) for n in
                                              ("ticketd-20200101T000000Z", "ticketd-20200101T000001Z", "mine"))
        for d in (cut_short, in_the_making, not_ours):
            os.makedirs(os.path.join(d, "log"))
        two_hours_ago = time.time() - 7200
        for d in (cut_short, not_ours):
            for path in (os.path.join(d, "log"), d):
                os.utime(path, (two_hours_ago, two_hours_ago))
        # Still being copied into: its log directory moved a moment ago.
        os.utime(in_the_making, (two_hours_ago, two_hours_ago))
        status, b, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual(status, 201, b)
        self.assertFalse(os.path.exists(cut_short))
        self.assertTrue(os.path.exists(in_the_making))  # another server's, perhaps: too young to judge
        self.assertTrue(os.path.exists(not_ours))

    def test_backups_can_be_turned_off(self):
        s = Server(extra_args=["--backup-dir", "off"])
        s.start()
        self.addCleanup(s.cleanup)
        status, r, _ = s.call("POST", "/api/v1/backups", token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["code"]), (503, "unavailable"), r)
        self.assertIn("--backup-dir", r["error"]["message"])


if __name__ == "__main__":
    unittest.main()
