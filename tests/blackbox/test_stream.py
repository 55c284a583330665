"""Black-box WebSocket tests: replay/live seam, permissions, slow clients, reports."""
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

import websocket  # Debian's python3-websocket

sys.path.insert(0, os.path.dirname(__file__))
from ticketd_server import ADMIN_TOKEN, Server, close_frame  # noqa: E402

SUBMISSION = {"customer_name": "华东精密机械有限公司", "customer_phone": "+86 138 1234 5678", "channel": "电话",
              "problem_type": "功能故障", "description": "打印机卡纸"}


class Stream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(extra_args=["--rate-limit", "0"]).start()  # the flood test must not be throttled
        cls.li = cls.s.login("li")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.s.cleanup()

    def connect(self, token):
        ws = websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" + token,
                                         timeout=30)
        self.addCleanup(ws.close)
        return ws

    def recv(self, ws):
        return json.loads(ws.recv())

    def submit(self, name="客户"):
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {"form": "service_ticket", "flow": "service_flow",
                                                               "fields": {**SUBMISSION, "customer_name": name}},
                                   token=self.li)
        self.assertEqual(status, 201, r)
        return r

    def test_replay_then_live_without_gap_or_duplicate(self):
        start = self.s.call("GET", "/healthz")[1]["position"]
        # Some tickets before subscribing, more while the replay runs, from several threads.
        for i in range(5):
            self.submit("之前%d" % i)
        ws = self.connect(self.li)
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": start}))
        ack = self.recv(ws)
        self.assertEqual(ack["op"], "subscribed")
        writers = [threading.Thread(target=lambda k=k: [self.submit("并发%d-%d" % (k, j)) for j in range(10)])
                   for k in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        end = self.s.call("GET", "/healthz")[1]["position"]
        # Every ticket event in (start, end] exactly once, in position order.
        _, log, _ = self.s.call("GET", "/api/v1/events?from=%d&limit=500" % start, token=ADMIN_TOKEN)
        expected = [e["position"] for e in log["items"] if e["stream"].startswith("ticket-")]
        seen = []
        while len(seen) < len(expected):
            m = self.recv(ws)
            self.assertEqual(m["topic"], "tickets")
            seen.append(m["position"])
            self.assertIn("ticket", m)
        self.assertEqual(seen, expected)
        self.assertLessEqual(max(seen), end)

    def test_a_first_live_subscriber_while_submits_run_misses_nothing(self):
        # With nobody subscribed the read model copies no ticket for the stream; the first
        # subscriber must still get every ticket event after the position its ack names, even
        # when a batch was being applied as it subscribed. Several rounds, submits never pausing.
        stop = threading.Event()
        def keep_submitting(k):
            j = 0
            while not stop.is_set():
                self.submit("不停%d-%d" % (k, j))
                j += 1
        writers = [threading.Thread(target=keep_submitting, args=(k,)) for k in range(4)]
        for w in writers:
            w.start()
        try:
            for _ in range(5):
                ws = websocket.create_connection(
                    self.s.base.replace("http", "ws") + "/api/v1/stream?token=" + self.li, timeout=30)
                try:
                    ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
                    ack = self.recv(ws)
                    self.assertEqual(ack["op"], "subscribed")
                    after = ack["position"]
                    # Collect until a later ticket event has arrived, then compare with the log.
                    seen = []
                    while len(seen) < 12:
                        seen.append(self.recv(ws)["position"])
                    _, log, _ = self.s.call("GET", "/api/v1/events?from=%d&limit=500" % after,
                                            token=ADMIN_TOKEN)
                    expected = [e["position"] for e in log["items"]
                                if e["stream"].startswith("ticket-")][:len(seen)]
                    self.assertEqual(seen, expected)
                finally:
                    ws.close()
        finally:
            stop.set()
            for w in writers:
                w.join()

    def test_ticket_topic_inbox_and_permissions(self):
        zhang = self.s.login("zhang")
        ws_ticket = self.connect(self.li)
        ws_inbox = self.connect(zhang)
        t = self.submit("单个")
        ws_ticket.send(json.dumps({"op": "subscribe", "topic": "ticket:" + t["id"]}))
        self.assertEqual(self.recv(ws_ticket)["op"], "subscribed")
        ws_inbox.send(json.dumps({"op": "subscribe", "topic": "inbox"}))
        self.assertEqual(self.recv(ws_inbox)["op"], "subscribed")
        self.submit("别的")  # not this ticket's topic; in zhang's inbox though
        self.s.call("POST", "/api/v1/tickets/%s/actions" % t["id"], {"action": "approve",
                    "fields": {"complexity": "简单"}}, token=zhang)
        m = self.recv(ws_ticket)
        self.assertEqual(m["ticket"]["id"], t["id"])
        self.assertIn(m["type"], ["FieldsChanged", "Approved", "NodeEntered"])
        # The inbox topic sees the other ticket arrive and this one leave zhang's to-dos.
        inbox_ids = set()
        while t["id"] not in inbox_ids:
            inbox_ids.add(self.recv(ws_inbox)["ticket"]["id"])
        ws_ticket.send(json.dumps({"op": "ping"}))
        while self.recv(ws_ticket).get("op") != "pong":
            pass
        ws_ticket.send("not json")
        while "error" not in (m := self.recv(ws_ticket)):
            pass
        self.assertEqual(m["error"]["code"], "bad_request")
        ws_ticket.send(json.dumps({"op": "subscribe", "topic": "everything"}))
        while "error" not in (m := self.recv(ws_ticket)):
            pass
        self.assertEqual(m["error"]["code"], "not_found")
        # So is a misspelt member: "frm" would otherwise subscribe without the replay asked for.
        ws_ticket.send(json.dumps({"op": "subscribe", "topic": "tickets", "frm": 0}))
        while "error" not in (m := self.recv(ws_ticket)):
            pass
        self.assertEqual((m["error"]["code"], m["error"]["message"]),
                         ("bad_request", 'unknown member "frm"; subscribe takes op, topic, from and tz'))
        # A ping takes nothing else: a client expecting its "id" echoed is told it is not.
        ws_ticket.send(json.dumps({"op": "ping", "id": 7}))
        while "error" not in (m := self.recv(ws_ticket)):
            self.assertNotEqual(m.get("op"), "pong", m)
        self.assertEqual((m["error"]["code"], m["error"]["message"]),
                         ("bad_request", 'unknown member "id"; ping takes op alone'))
        # A ticket that does not exist is a typo, said at once rather than a silent subscription.
        ws_ticket.send(json.dumps({"op": "subscribe", "topic": "ticket:T-999999"}))
        while "error" not in (m := self.recv(ws_ticket)):
            pass
        self.assertEqual((m["error"]["code"], m["error"]["message"]), ("not_found", "no ticket T-999999"))
        # Unsubscribing is acknowledged as subscribing is; then the topic is quiet. The tickets
        # topic, delivered in the same fan-out, shows when the ticket's message would have come.
        ws_ticket.send(json.dumps({"op": "unsubscribe", "topic": "ticket:" + t["id"]}))
        while (m := self.recv(ws_ticket)).get("op") != "unsubscribed":
            pass
        self.assertEqual(m, {"op": "unsubscribed", "topic": "ticket:" + t["id"]})
        ws_ticket.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        while self.recv(ws_ticket).get("op") != "subscribed":
            pass
        self.s.call("POST", "/api/v1/tickets/%s/comments" % t["id"], {"text": "退订之后"}, token=zhang)
        topics = []
        while not ((m := self.recv(ws_ticket)).get("topic") == "tickets" and m["type"] == "CommentAdded"):
            topics.append(m.get("topic"))
        ws_ticket.send(json.dumps({"op": "ping"}))
        while (m := self.recv(ws_ticket)).get("op") != "pong":
            topics.append(m.get("topic"))
        self.assertNotIn("ticket:" + t["id"], topics)
        # No token, bad token: refused at the handshake.
        for bad in ["", "nope"]:
            with self.assertRaises(websocket.WebSocketBadStatusException) as e:
                websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=" + bad,
                                            timeout=10)
            self.assertEqual(e.exception.status_code, 401)

    def test_from_is_a_position_of_this_log(self):
        ws = self.connect(self.li)
        end = self.s.call("GET", "/healthz")[1]["position"]
        # Past the end: a client of another data directory, whose "after" would be taken wrongly.
        for bad, message in [(end + 1000, "from %d is beyond the end of the log" % (end + 1000)),
                             (1.5, "from must be a log position (a whole number)")]:
            ws.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": bad}))
            m = self.recv(ws)
            self.assertEqual(m["error"]["code"], "bad_request", m)
            self.assertTrue(m["error"]["message"].startswith(message), m)
        # The events feed alike.
        status, r, _ = self.s.call("GET", "/api/v1/events?from=%d" % (end + 1000), token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["field"]), (400, "from"), r)
        # After the position a command answered, the views perhaps not there yet: nothing up to it.
        seen = self.submit("之前")["position"]
        ws.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": seen}))
        self.assertEqual(self.recv(ws)["op"], "subscribed")
        after = self.submit("之后")
        m = self.recv(ws)
        self.assertGreater(m["position"], seen)
        self.assertEqual(m["ticket"]["id"], after["id"])

    def test_streams_opened_and_refused_are_in_the_access_log(self):
        self.connect(self.li)
        with self.assertRaises(websocket.WebSocketBadStatusException):
            websocket.create_connection(self.s.base.replace("http", "ws") + "/api/v1/stream?token=nope", timeout=10)
        end = time.monotonic() + 30  # request lines are written once a second
        want = ["user=li GET /api/v1/stream status=101", "user=- GET /api/v1/stream status=401"]
        while time.monotonic() < end and not all(any(w in line for line in self.s.output) for w in want):
            time.sleep(0.05)
        for w in want:
            self.assertTrue(any(w in line and "client=127.0.0.1" in line for line in self.s.output), w)
        self.assertFalse(any("token=" in line for line in self.s.output if "/api/v1/stream" in line))

    def test_report_topic_moves_with_submissions(self):
        ws = self.connect(self.li)
        ws.send(json.dumps({"op": "subscribe", "topic": "report:by_problem_type"}))
        self.assertEqual(self.recv(ws)["op"], "subscribed")
        first = self.recv(ws)
        before = first["report"]["total"]
        self.submit("报表")
        while True:
            m = self.recv(ws)
            if m["report"]["total"] == before + 1:
                break

    def test_a_dashboard_topic_sends_its_numbers_then_each_change(self):
        ws = self.connect(self.li)
        ws.send(json.dumps({"op": "subscribe", "topic": "dashboard:service_monitor"}))
        self.assertEqual(self.recv(ws)["op"], "subscribed")
        first = self.recv(ws)
        self.assertEqual(first["topic"], "dashboard:service_monitor")
        board = first["dashboard"]
        self.assertEqual((board["name"], len(board["widgets"])), ("售后服务监控看板", 7))
        channels = lambda b: b["widgets"][0]["result"]["total"]
        # The page's widgets (its numbers are the same when nothing moves between the two reads;
        # ReportsTest checks them on a quiet server).
        status, page, _ = self.s.call("GET", "/api/v1/dashboards/service_monitor/data", token=self.li)
        shape = lambda ws: [(w["title"], w["report"], w["chart"], w.get("from")) for w in ws]
        self.assertEqual(shape(page["widgets"]), shape(board["widgets"]))
        before = channels(board)
        self.submit("看板")
        while True:
            m = self.recv(ws)
            self.assertEqual(m["topic"], "dashboard:service_monitor")
            if channels(m["dashboard"]) == before + 1:
                break
        # A dashboard that does not exist is refused on subscribing.
        ws.send(json.dumps({"op": "subscribe", "topic": "dashboard:nope"}))
        while True:
            m = self.recv(ws)
            if "error" in m:
                break
        self.assertEqual(m["error"]["code"], "not_found")
        self.assertIn("no dashboard \"nope\"", m["error"]["message"])

    def stream_metrics(self):
        status, text, _ = self.s.call("GET", "/metrics", token=ADMIN_TOKEN)
        self.assertEqual(status, 200)
        values = dict(l.split() for l in text.splitlines() if l and not l.startswith("#") and "{" not in l)
        return int(values["ticketd_stream_subscribers"]), int(values["ticketd_stream_dropped_slow_total"])

    def test_a_close_while_a_burst_is_sent_is_answered_after_it(self):
        # A catch-up sends a burst of messages gathered into few writes; a client that closes in
        # the middle of it gets every message before the server's close frame, and that frame.
        start = self.s.call("GET", "/healthz")[1]["position"]
        for i in range(40):
            self.submit("突发%d" % i)
        for attempt in range(10):
            ws = self.connect(self.li)
            ws.send(json.dumps({"op": "subscribe", "topic": "tickets", "from": start}))
            self.assertEqual(self.recv(ws)["op"], "subscribed")
            ws.send_close(websocket.STATUS_NORMAL, b"enough")
            positions, close = [], None
            while close is None:
                frame = ws.recv_data_frame(True)[1]
                if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    close = frame.data
                else:
                    positions.append(json.loads(frame.data)["position"])
            self.assertEqual(int.from_bytes(close[:2], "big"), websocket.STATUS_NORMAL, attempt)
            self.assertEqual(positions, sorted(set(positions)), attempt)  # in order, none twice
            ws.shutdown()

    def raw_stream(self, receive_buffer=None):
        """A plain socket through the WebSocket handshake, for frames websocket-client will not
        send; with `receive_buffer`, a small window set before connecting."""
        host, port = self.s.base[len("http://"):].rsplit(":", 1)
        raw = socket.socket()
        self.addCleanup(raw.close)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.connect((host, int(port)))
        raw.settimeout(30)
        raw.sendall(("GET /api/v1/stream?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n" % self.li).encode())
        handshake = b""
        while b"\r\n\r\n" not in handshake:  # a client sends frames only after the 101
            handshake += raw.recv(1)
        self.assertIn(b" 101 ", handshake)
        return raw

    def test_a_message_over_64_kb_is_closed_with_a_reason(self):
        ping = json.dumps({"op": "ping"})
        at_the_limit = self.connect(self.li)
        at_the_limit.send(ping + " " * (65536 - len(ping)))
        self.assertEqual(self.recv(at_the_limit), {"op": "pong"})
        too_big = "a message may be at most 65536 bytes"
        # One byte over, in two fragments neither of which is over on its own.
        fragments = self.connect(self.li)
        half = (ping + " " * (65537 - len(ping))).encode()
        fragments.send_frame(websocket.ABNF.create_frame(half[:40000], websocket.ABNF.OPCODE_TEXT, 0))
        fragments.send_frame(websocket.ABNF.create_frame(half[40000:], websocket.ABNF.OPCODE_CONT, 1))
        self.assertEqual(close_frame(fragments), (1009, too_big))
        # A frame announcing a gigabyte: closed once 64 KB of it are read, not after the rest.
        raw = self.raw_stream()
        raw.sendall(bytes([0x81, 0x80 | 127]) + (1 << 30).to_bytes(8, "big") + b"\0\0\0\0" + b" " * 70000)
        answer = b""
        while len(answer) < 2 or len(answer) < 2 + answer[1]:
            chunk = raw.recv(4096)
            self.assertTrue(chunk, answer)
            answer += chunk
        self.assertEqual(answer[0], 0x88)  # a close frame, unmasked, with a short payload
        self.assertEqual((int.from_bytes(answer[2:4], "big"), answer[4:2 + answer[1]].decode()), (1009, too_big))
        self.assertEqual(self.s.call("GET", "/healthz")[0], 200)

    def test_a_client_that_stops_reading_is_dropped(self):
        # A raw socket that completes the handshake, subscribes, then never reads again.
        raw = self.raw_stream(receive_buffer=4096)
        payload = json.dumps({"op": "subscribe", "topic": "tickets"}).encode()
        mask = b"\x01\x02\x03\x04"
        raw.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        healthy = self.connect(self.li)
        healthy.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        self.assertEqual(self.recv(healthy)["op"], "subscribed")
        streams_before, dropped_before = self.stream_metrics()
        self.assertGreaterEqual(streams_before, 2)  # the stalled one and the healthy one at least
        got = []

        def read_healthy():  # a well-behaved dashboard keeps reading throughout
            try:
                while True:
                    got.append(self.recv(healthy))
            except Exception:  # closed at the end of the test
                pass

        reader = threading.Thread(target=read_healthy, daemon=True)
        reader.start()

        # Flood without ever reading the stalled socket: ~4 ticket events per submission, far more
        # than the server's queue (4096 messages) and the kernel's buffers together hold.
        def flood(k):
            for j in range(400):
                self.submit("洪水%d-%d" % (k, j))

        floods = [threading.Thread(target=flood, args=(k,)) for k in range(4)]
        for f in floods:
            f.start()
        for f in floods:
            f.join()
        self.assertEqual(self.s.call("GET", "/healthz")[0], 200)
        # Now read what the stalled client was sent: it ends in a close, not in the whole stream.
        raw.settimeout(30)
        data, closed = b"", False
        try:
            while True:
                chunk = raw.recv(1 << 20)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        self.assertTrue(closed, "the stalled client was never dropped (%d bytes read)" % len(data))
        raw.close()
        # An operator sees it in /metrics: one more stream dropped for being slow, one fewer open.
        streams, dropped = self.stream_metrics()
        self.assertGreaterEqual(dropped, dropped_before + 1)
        end = time.monotonic() + 30
        while time.monotonic() < end and streams > streams_before - 1:
            time.sleep(0.05)
            streams, _ = self.stream_metrics()
        self.assertLessEqual(streams, streams_before - 1)
        self.assertGreaterEqual(streams, 1)  # the healthy one
        # The healthy subscriber kept up and still gets new events.
        t = self.submit("之后")
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(m.get("ticket", {}).get("id") == t["id"] for m in list(got)):
            time.sleep(0.05)
        self.assertTrue(any(m.get("ticket", {}).get("id") == t["id"] for m in got))
        self.assertGreater(len(got), 4 * 400)


class ClientsThatLeave(unittest.TestCase):
    def test_a_stream_whose_client_left_holds_nothing_and_a_stop_does_not_wait_for_it(self):
        # Each stream checks its session every millisecond here, so a check is always on its way
        # when a client leaves. A stream that went on checking after its end kept itself, and
        # its connection, alive for good, and a stop waited for it until its grace ran out.
        s = Server(extra_args=["--stream-recheck-ms", "1", "--shutdown-grace", "60"]).start()
        self.addCleanup(s.cleanup)
        url = s.base.replace("http", "ws") + "/api/v1/stream?token=" + s.login("li")
        clients = [websocket.create_connection(url, timeout=30) for _ in range(40)]
        for ws in clients:
            ws.send(json.dumps({"op": "subscribe", "topic": "tickets"}))
        for ws in clients:
            self.assertEqual(json.loads(ws.recv())["op"], "subscribed")
            ws.sock.close()  # gone without a close frame, as a client that is killed
        deadline = time.monotonic() + 20
        while True:  # every stream has seen its client leave
            status, text, _ = s.call("GET", "/metrics", token=ADMIN_TOKEN)
            self.assertEqual(status, 200)
            if "\nticketd_stream_subscribers 0\n" in text:
                break
            self.assertLess(time.monotonic(), deadline, text)
            time.sleep(0.05)
        s.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.proc.wait(timeout=20), 0, "".join(s.output))
        s.pump.join(5)
        self.assertFalse(any("cutting them off" in line for line in s.output), "".join(s.output))

    def test_a_bad_recheck_interval_stops_the_start(self):
        for value in ("0", "abc", "86400001"):
            s = Server(extra_args=["--stream-recheck-ms", value])
            self.addCleanup(s.cleanup)
            with self.assertRaises(RuntimeError) as e:
                s.start()
            self.assertIn("--stream-recheck-ms must be a whole number of milliseconds from 1 to 86400000",
                          str(e.exception))


if __name__ == "__main__":
    unittest.main()
