"""fanmaild's HTTP face, every route through real clients (urllib and
curl): the index, /healthz, /metrics, the confirmation pages (GET shows,
only POST acts; a `set digest` token refused, kept for the reply), the
subscribe and unsubscribe forms, one-click unsubscribe with forged and
malformed tokens, the path prefix of http_base_url, and the error pages
with their statuses and headers."""
import re
import unittest

from prometheus_client.parser import text_string_to_metric_families

from commands_util import LIST, addr, message
from http_util import HttpCase

CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
ENC_LIST = LIST.replace("@", "%40")
# Of the token's form (V-ADDR-SIG) but signed by nobody.
FORGED = "1-nvsw2ytfoiqgk6dbnvygyzjonzsxi-abcdefghijklmnop"


class Routes(HttpCase):

    def assert_page(self, status, headers, body, want_status, token_page=True):
        self.assertEqual(status, want_status, body)
        self.assertEqual(headers["Content-Security-Policy"], CSP)
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        self.assertEqual(headers["X-Frame-Options"], "DENY")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        if token_page:
            self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertTrue(headers["Content-Type"].startswith("text/html; charset=utf-8"))
        self.assertIn('<html lang="en">', body)
        self.assertRegex(body, r"<title>[^<]+</title>")
        self.assertNotIn("<script", body)

    def test_index_healthz_metrics(self):
        self.assert_page(*self.req("/"), 200, token_page=False)
        status, headers, body = self.req("/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        self.assertEqual(self.req("/healthz", method="HEAD")[0], 200)
        status, headers, body = self.req("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        names = [f.name for f in text_string_to_metric_families(body)]
        self.assertTrue(names and all(n.startswith("fanmail_") for n in names), names)
        code, body = self.curl("/healthz")
        self.assertEqual((code, body), (200, "ok\n"))

    def test_confirm_get_and_head_change_nothing_post_subscribes(self):
        self.send("bob@example.net", addr("request"),
                  message("Bob <bob@example.net>", addr("request"), "subscribe"))
        _, _, m = self.last_mail_to("bob@example.net")
        token = re.fullmatch(r"confirm ([0-9a-f]{32})", str(m["Subject"])).group(1)
        self.assertIn(f"{self.base}/confirm/{token}", self.text_of(m))
        before = self.members()
        self.assertNotIn("bob@example.net", before)

        status, headers, body = self.req(f"/confirm/{token}")
        self.assert_page(status, headers, body, 200)
        self.assertIn('<form method="post">', body)
        self.assertIn("<button", body)
        self.assertIn("bob@example.net", body)
        self.assertEqual(self.req(f"/confirm/{token}", method="HEAD")[0], 200)
        code, _ = self.curl(f"/confirm/{token}")
        self.assertEqual(code, 200)
        self.assertEqual(self.members(), before, "a GET or HEAD changed the members")

        status, headers, body = self.req(f"/confirm/{token}", method="POST", data="")
        self.assert_page(status, headers, body, 200)
        self.assertEqual(self.members().get("bob@example.net"), "enabled", self.members())
        # The token is used up.
        status, headers, body = self.req(f"/confirm/{token}", method="POST", data="")
        self.assert_page(status, headers, body, 404)
        self.assertEqual(self.req("/confirm/" + "0" * 32)[0], 404)
        self.assertEqual(self.req("/confirm/not%20a%20token")[0], 400)

    def test_set_digest_token_is_refused_and_kept_for_the_reply(self):
        who = "member@example.net"
        self.send(who, addr("request"), message(who, addr("request"), "set digest"))
        _, _, m = self.last_mail_to(who)
        token = re.fullmatch(r"confirm ([0-9a-f]{32})", str(m["Subject"])).group(1)
        self.assertNotIn("/confirm/", self.text_of(m))
        for method in ("GET", "POST"):
            status, headers, body = self.req(f"/confirm/{token}", method=method,
                                             data="" if method == "POST" else None)
            self.assert_page(status, headers, body, 403)
            self.assertNotIn("<form", body, method)
            self.assertNotIn("<button", body, method)
            self.assertIn("confirm this change by replying to the mail", body, method)
            self.assertEqual("regular", self.delivery(who), f"a {method} changed the delivery")
        # the token still confirms by reply
        self.send(who, addr("confirm", token),
                  message(who, addr("confirm", token), f"Re: confirm {token}"))
        self.assertEqual("digest", self.delivery(who))

    def delivery(self, who):
        return self.query("SELECT delivery FROM members WHERE addr_key = ?", (who,))[0][0]

    def test_unsubscribe_form_sends_confirmation_only(self):
        for path in (f"/unsubscribe/{LIST}", f"/unsubscribe/{ENC_LIST}"):
            status, headers, body = self.req(path)
            self.assert_page(status, headers, body, 200)
            self.assertIn('<label for="address">', body)
            self.assertIn('id="address" name="address"', body)
        self.assertEqual(self.req(f"/unsubscribe/{LIST}", method="HEAD")[0], 200)
        self.assertEqual(self.req("/unsubscribe/nolist@lists.example.org")[0], 404)
        before = self.mails_to("member@example.net")

        status, headers, body = self.req(f"/unsubscribe/{LIST}", method="POST",
                                         data="address=member%40example.net")
        self.assert_page(status, headers, body, 200)
        self.assertEqual(len(self.mails_to("member@example.net")), len(before) + 1)
        self.assertEqual(self.members().get("member@example.net"), "enabled")
        # No address: 400, nothing sent.
        self.assertEqual(self.req(f"/unsubscribe/{LIST}", method="POST", data="x=1")[0], 400)
        self.assertEqual(len(self.mails_to("member@example.net")), len(before) + 1)

    def test_subscribe_form_with_curl(self):
        code, body = self.curl(f"/subscribe/{ENC_LIST}")
        self.assertEqual(code, 200)
        self.assertIn("<form", body)
        code, body = self.curl(f"/subscribe/{LIST}", "--data-urlencode",
                               "address=carol@example.net")
        self.assertEqual(code, 200, body)
        self.assertEqual(len(self.mails_to("carol@example.net")), 1)
        self.assertNotIn("carol@example.net", self.members())

    def test_values_are_escaped(self):
        status, _, body = self.req(f"/subscribe/{LIST}", method="POST",
                                   data="address=%3Cb%3Eevil%22%3C%2Fb%3E%40example.net")
        self.assertIn(status, (200, 400))
        self.assertNotIn("<b>", body)
        self.assertNotIn('evil"', body)

    def test_oneclick_forged_and_malformed_change_nothing(self):
        before = self.members()
        path = f"/unsubscribe/{LIST}/{FORGED}"
        status, headers, body = self.req(path)
        self.assertEqual(status, 403, body)
        self.assertEqual(self.req(path, method="HEAD")[0], 403)
        status, headers, body = self.req(path, method="POST", data="List-Unsubscribe=One-Click")
        self.assert_page(status, headers, body, 403)
        code, _ = self.curl(path, "-F", "List-Unsubscribe=One-Click")
        self.assertEqual(code, 403)
        # Malformed tokens, and a POST without the RFC 8058 body.
        self.assertEqual(self.req(f"/unsubscribe/{LIST}/1-abc-def", method="POST",
                                  data="List-Unsubscribe=One-Click")[0], 400)
        self.assertEqual(self.req(f"/unsubscribe/{LIST}/a%2Fb", method="POST",
                                  data="List-Unsubscribe=One-Click")[0], 400)
        self.assertEqual(self.req(path, method="POST", data="x=y")[0], 400)
        self.assertEqual(self.members(), before)

    def test_errors(self):
        status, headers, body = self.req("/nothing/here")
        self.assert_page(status, headers, body, 404)
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            status, headers, body = self.req(f"/confirm/{'0' * 32}", method=method, data="")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers["Allow"], "GET, HEAD, POST")
        status, headers, _ = self.req("/healthz", method="POST", data="")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))
        self.assertEqual(self.req("/confirm/a%00b")[0], 400)
        self.assertEqual(self.req(f"/unsubscribe/{LIST}/", method="GET")[0], 404)
        self.assert_alive()


class Prefix(HttpCase):
    """Links under a path prefix: routes served there and at the root."""

    def extra_settings(self):
        return {"http_base_url": "https://lists.example.org/lists/"}

    def test_routes_under_the_prefix(self):
        self.assertEqual(self.req("/lists/healthz")[2], "ok\n")
        self.assertEqual(self.req("/lists")[0], 200)
        self.assertEqual(self.req(f"/lists/unsubscribe/{LIST}")[0], 200)
        self.assertEqual(self.req(f"/unsubscribe/{LIST}")[0], 200)
        self.assertEqual(self.req("/listsx/healthz")[0], 404)


class MetricsAllow(HttpCase):
    http_extra = {"http_metrics_allow": "192.0.2.1"}

    def test_metrics_forbidden_outside_the_allow_list(self):
        status, _, body = self.req("/metrics")
        self.assertEqual(status, 403, body)
        self.assertEqual(self.req("/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
