"""Print templates and GET /tickets/{id}/print.pdf against the real binary. The PDF's text is read
back with poppler's pdftotext, as a person would copy it out of the printed report."""
import struct
import subprocess
import unittest
import zlib

from ticketd_server import ADMIN_TOKEN, Server
from test_api import SUBMISSION


def pdf_text(data):
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode("utf-8")


class Printing(unittest.TestCase):
    def setUp(self):
        self.s = Server().start()
        self.addCleanup(self.s.cleanup)
        self.li = self.s.login("li")
        self.zhang = self.s.login("zhang")
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": SUBMISSION}, token=self.li)
        self.assertEqual(status, 201, r)
        self.tid = r["id"]

    def print_pdf(self, query="", token=None):
        return self.s.call("GET", "/api/v1/tickets/%s/print.pdf%s" % (self.tid, query),
                           token=token or self.zhang)

    def test_the_pictures_an_image_field_holds_are_printed(self):
        # A 2000 x 1000 photo (a PNG here: Python writes one without a library) and a second one.
        def png(width, height, shade):
            raw = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, shade, y * 255 // height))
                                              for x in range(width)) for y in range(height))

            def chunk(kind, data):
                return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                    chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        ids = []
        for picture in (png(2000, 1000, 40), png(300, 400, 200)):
            status, r, _ = self.s.call("POST", "/api/v1/attachments", token=self.li, raw=picture,
                                       headers={"Content-Type": "image/png", "X-Filename": "photo.png"})
            self.assertEqual(status, 201, r)
            ids.append(r["attachment"])
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": dict(SUBMISSION, images=ids)}, token=self.li)
        self.assertEqual(status, 201, r)
        self.tid = r["id"]
        status, pdf, _ = self.print_pdf("?template=service_report")
        self.assertEqual(status, 200, pdf)
        listed = subprocess.run(["pdfimages", "-list", "-"], input=pdf, capture_output=True, check=True)
        images = [line.split() for line in listed.stdout.decode().splitlines()[2:]]
        # Both drawn, the large one scaled down to 220 points high at 144 dpi (not embedded whole),
        # upright, each under its caption.
        self.assertEqual([(int(i[3]), int(i[4])) for i in images if i[2] == "image"], [(880, 440), (300, 400)])
        self.assertEqual(pdf_text(pdf).count("图片:photo.png"), 2)
        # The dispatch sheet shows no image field, so no picture.
        status, pdf, _ = self.print_pdf("?template=dispatch_sheet")
        listed = subprocess.run(["pdfimages", "-list", "-"], input=pdf, capture_output=True, check=True)
        self.assertEqual(listed.stdout.decode().splitlines()[2:], [])

    def test_reference_templates_print_the_ticket(self):
        status, r, _ = self.s.call("GET", "/api/v1/print-templates", token=self.zhang)
        self.assertEqual(status, 200, r)
        self.assertEqual([t["id"] for t in r["items"]], ["dispatch_sheet", "service_report"])

        status, pdf, headers = self.print_pdf("?template=service_report")
        self.assertEqual(status, 200, pdf)
        self.assertEqual(headers["Content-Type"], "application/pdf")
        self.assertIn('filename="%s.pdf"' % self.tid, headers["Content-Disposition"])
        self.assertTrue(pdf.startswith(b"%PDF-"))
        text = pdf_text(pdf)
        for expected in ("售后服务报告", self.tid, "处理中", "工单受理", "客户名称",
                         SUBMISSION["customer_name"], "处理记录", "提交工单", "李四 (li)",
                         "服务工程师", "张三 (zhang) 打印于"):
            self.assertIn(expected, text)

        status, pdf, _ = self.print_pdf("?template=dispatch_sheet")
        self.assertEqual(status, 200, pdf)
        text = pdf_text(pdf)
        self.assertIn("售后服务派工单", text)
        self.assertIn("工程师签字", text)
        self.assertNotIn("处理记录", text)  # the sheet has no process record

        # As it was when submitted: open, at 工单受理, no rating yet.
        status, events, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % self.tid, token=ADMIN_TOKEN)
        first = events["items"][0]["position"]
        status, pdf, _ = self.print_pdf("?template=service_report&as_of=%d" % first)
        self.assertEqual(status, 200, pdf)
        text = pdf_text(pdf)
        self.assertIn("事件 #%d" % first, text)
        self.assertIn("处理中", text)
        self.assertIn("提交工单", text)
        self.assertNotIn("流转至", text)  # the NodeEntered after it is not printed
        status, r, _ = self.print_pdf("?as_of=0")
        self.assertEqual((status, r["error"]["code"]), (404, "not_found"))
        status, r, _ = self.print_pdf("?as_of=yesterday")
        self.assertEqual((status, r["error"]["field"]), (400, "as_of"))
        end = self.s.call("GET", "/healthz")[1]["position"]
        status, r, _ = self.print_pdf("?as_of=%d" % (end + 1))
        self.assertEqual((status, r["error"]["field"]), (400, "as_of"))

        # Without a template: the form's default layout, every field by its label.
        status, pdf, _ = self.print_pdf()
        self.assertEqual(status, 200, pdf)
        text = pdf_text(pdf)
        self.assertIn("售后服务工单", text)
        self.assertIn("问题详细描述", text)
        self.assertIn("时区 UTC", text)

        # The company settings: its name heads the page, and a layout without a zone prints on
        # the company's clock.
        status, r, _ = self.s.call("PUT", "/api/v1/settings", {"time_zone": "Asia/Shanghai", "name": "华东精密售后服务部"},
                                   token=ADMIN_TOKEN)
        self.assertEqual(status, 201, r)
        status, pdf, _ = self.print_pdf()
        text = pdf_text(pdf)
        self.assertLess(text.index("华东精密售后服务部"), text.index("售后服务工单"))
        self.assertIn("时区 Asia/Shanghai", text)

    def test_the_customer_prints_from_the_portal(self):
        status, r, _ = self.s.call("POST", "/api/v1/tickets/%s/comments" % self.tid, {"text": "内部:先别报价"},
                                   token=self.zhang)
        self.assertEqual(status, 201, r)
        status, submitted, _ = self.s.call("GET", "/api/v1/tickets/%s/events" % self.tid, token=ADMIN_TOKEN)
        code = submitted["items"][0]["data"]["portal_code"]
        status, pdf, headers = self.s.call("GET", "/api/v1/portal/tickets/%s/print.pdf?code=%s" % (self.tid, code))
        self.assertEqual(status, 200, pdf)
        text = pdf_text(pdf)
        self.assertIn(SUBMISSION["customer_name"], text)  # the flow's portal_readable fields
        self.assertNotIn(SUBMISSION["customer_phone"], text)
        self.assertNotIn("先别报价", text)  # staff notes stay inside
        self.assertIn("客户 打印于", text)
        status, r, _ = self.s.call("GET", "/api/v1/portal/tickets/%s/print.pdf?code=wrong" % self.tid)
        self.assertEqual((status, r["error"]["code"]), (404, "not_found"))

    def test_errors(self):
        status, r, _ = self.print_pdf("?template=nope")
        self.assertEqual((status, r["error"]["code"], r["error"]["field"]), (404, "not_found", "template"))
        status, r, _ = self.s.call("GET", "/api/v1/tickets/T-999999/print.pdf", token=self.zhang)
        self.assertEqual((status, r["error"]["code"]), (404, "not_found"))
        status, r, _ = self.s.call("GET", "/api/v1/tickets/%s/print.pdf" % self.tid)
        self.assertEqual(status, 401, r)

        # A template of another form does not print this ticket.
        form = {"name": "回访记录", "fields": [{"key": "note", "label": "回访内容", "type": "text"}]}
        self.assertEqual(self.s.call("PUT", "/api/v1/forms/visit", form, token=ADMIN_TOKEN)[0], 201)
        other = {"name": "回访单", "form": "visit", "sections": [{"type": "fields"}]}
        status, r, _ = self.s.call("PUT", "/api/v1/print-templates/visit_sheet", other, token=ADMIN_TOKEN)
        self.assertEqual((status, r["version"]), (201, 1), r)
        status, r, _ = self.print_pdf("?template=visit_sheet")
        self.assertEqual((status, r["error"]["code"], r["error"]["field"]), (422, "invalid_value", "template"))

        # Definitions are checked like every other: errors name the path; only admins publish.
        bad = {"name": "坏", "form": "service_ticket", "sections": [{"type": "fields", "fields": ["nope"]}]}
        status, r, _ = self.s.call("PUT", "/api/v1/print-templates/bad", bad, token=ADMIN_TOKEN)
        self.assertEqual((status, r["error"]["code"]), (422, "invalid_definition"), r)
        self.assertIn("print_template.sections[0].fields", r["error"]["message"])
        status, r, _ = self.s.call("PUT", "/api/v1/print-templates/x", other, token=self.zhang)
        self.assertEqual(status, 403, r)
        self.assertEqual(self.s.call("GET", "/healthz")[0], 200)

    def test_reader_sees_only_readable_fields_and_templates_survive_a_restart(self):
        # A node that hides the phone from its assignees: 工单受理 reads everything but it.
        status, flow, _ = self.s.call("GET", "/api/v1/flows/service_flow", token=ADMIN_TOKEN)
        self.assertEqual(status, 200)
        for node in flow["nodes"]:
            if node["id"] == "accept":
                node["readable"] = ["customer_name", "channel", "problem_type", "description"]
        del flow["id"], flow["version"]
        self.assertEqual(self.s.call("PUT", "/api/v1/flows/service_flow", flow, token=ADMIN_TOKEN)[0], 200)
        status, r, _ = self.s.call("POST", "/api/v1/tickets", {
            "form": "service_ticket", "flow": "service_flow", "fields": SUBMISSION}, token=self.li)
        self.assertEqual(status, 201, r)
        self.tid = r["id"]
        text = pdf_text(self.print_pdf("?template=service_report")[1])
        self.assertIn(SUBMISSION["customer_name"], text)
        self.assertNotIn("客户电话", text)
        self.assertNotIn(SUBMISSION["customer_phone"], text)
        admin_text = pdf_text(self.print_pdf("?template=service_report", token=ADMIN_TOKEN)[1])
        self.assertIn(SUBMISSION["customer_phone"], admin_text)

        template = {"name": "简报", "form": "service_ticket", "title": "工单简报", "time_zone": "UTC",
                    "sections": [{"type": "fields", "title": "摘要", "fields": ["customer_name"]}]}
        self.assertEqual(self.s.call("PUT", "/api/v1/print-templates/brief", template, token=ADMIN_TOKEN)[0], 201)
        self.s.stop()
        self.s.start()
        status, r, _ = self.s.call("GET", "/api/v1/print-templates/brief", token=ADMIN_TOKEN)
        self.assertEqual((status, r["version"], r["title"]), (200, 1, "工单简报"), r)
        text = pdf_text(self.print_pdf("?template=brief", token=self.s.login("zhang"))[1])
        self.assertIn("工单简报", text)
        self.assertIn("时区 UTC", text)


if __name__ == "__main__":
    unittest.main()
