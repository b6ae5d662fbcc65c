"""DKIM signing of what fanmaild sends (issue 14), checked by dkimpy
(Debian's python3-dkim) asking the test's dnsmasq for the public keys that
`fanmail dkim show` prints: keys made by `fanmail dkim keygen lists.test`
(rsa-2048 and ed25519), published as TXT records.

Every message is signed with d=lists.test by both keys, and each signature
verifies: a batched post (one signature for the whole batch), the copy a
server without 8BITMIME gets (downgraded, then signed), personalized
copies (each its own signature, whose h= covers its own List-Unsubscribe
and List-Unsubscribe-Post; with a %m footer the body hash differs per
copy), a confirmation, a goodbye, a DSN, MIME and plain text digests
(as is and downgraded) and a personalized list's digest copies (each
signed over its own List-Unsubscribe). A changed body byte or a
changed signed header makes dkimpy fail, so the check can fail.

And a real receiver: a private Postfix as the members' MX with Debian's
OpenDKIM as its milter in verify mode (the keys from `dkim show` in its
TestPublicKeys file); Postfix relays what it accepts to a Python sink,
where the Authentication-Results header OpenDKIM added says
dkim=pass header.d=lists.test for a post, a personalized copy, a MIME
digest, a plain text digest and a DSN."""
import email
import email.policy
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

import fmtest
from delivery_util import DeliveryCase
from sink import wait_for

try:
    import dkim  # python3-dkim
except ImportError:
    dkim = None
try:
    import dns.resolver  # python3-dnspython, dkimpy's own dependency
except ImportError:
    dns = None

BASE = "https://lists.test/mail"
POST8 = ("From: Zoë <zoe@ext.test>\r\nTo: dev@lists.test\r\nSubject: café\r\n"
         "Message-ID: <d1@ext.test>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n"
         "Grüße aus Köln.   \r\n.a dot line\r\nend\r\n").encode()


def strings_of(out):
    """[(name, [strings])] of the TXT records in `dkim show` output."""
    recs = []
    for m in re.finditer(r"(\S+)\s+IN TXT \((.*?)\)", out, re.S):
        recs.append((m.group(1).rstrip("."), re.findall(r'"([^"]*)"', m.group(2))))
    return recs


def sig_tags(msg, n):
    """The tags of the n-th DKIM-Signature of msg (bytes)."""
    m = email.message_from_bytes(msg)
    sigs = m.get_all("DKIM-Signature") or []
    v = re.sub(r"\s+", "", sigs[n])
    return dict(t.split("=", 1) for t in v.split(";") if "=" in t)


@fmtest.require(dkim is not None, "dkimpy is not installed (Debian: python3-dkim)")
@fmtest.require(dns is not None, "dnspython is not installed (Debian: python3-dnspython)")
class DkimDeliveryCase(DeliveryCase):
    nsinks = 4
    mx = {"a.test": 0, "b.test": 1, "c.test": 2, "lists.test": 3}  # domain: sink

    def setUp(self):
        super().setUp()
        # a.test and c.test offer 8BITMIME; b.test does not.
        for dom, i in self.mx.items():
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))
        self.sinks[1].eightbitmime = False
        self.fm.cli("dkim", "keygen", "lists.test")
        self.fm.cli("dkim", "keygen", "lists.test", "--algorithm", "ed25519")
        self.records = {}
        for name, strings in strings_of(self.fm.cli("dkim", "show", "lists.test").stdout):
            # dnsmasq: one TXT record of several character-strings
            self.dns.txt(name, ",".join(f'"{s}"' for s in strings))
            self.records[name] = "".join(strings)
        self.assertEqual(2, len(self.records), self.records)

    def dnsfunc(self, name, timeout=5):
        """dkimpy's key lookup, answered by the test's dnsmasq."""
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = self.dns.port
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            ans = r.resolve(qname, "TXT", lifetime=timeout)
        except Exception:
            return None
        return b"".join(b"".join(rr.strings) for rr in ans)

    def start(self, **extra):
        s = {"default_list_domain": "lists.test", "http_base_url": BASE}
        s.update(extra)
        self.start_all(s)
        # dnsmasq serves what `dkim show` printed
        for name, value in self.records.items():
            self.assertEqual(value.encode(), self.dnsfunc(name + "."), name)

    def make_list(self, members, **settings):
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@c.test")
        self.fm.cli("member", "add", "dev@lists.test", *members)
        pairs = [f"{k}={v}" for k, v in settings.items()]
        if pairs:
            self.fm.cli("list", "set", "dev@lists.test", *pairs)

    def post(self, msg, to="dev@lists.test", sender="zoe@ext.test"):
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail(sender, [to], msg)

    def q(self, sql, *args):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def txns(self, pred):
        out = []
        for s in self.sinks:
            with s.lock:
                out += [(s, t) for t in s.transactions if pred(t)]
        return out

    def wait_txns(self, pred, n, what):
        try:
            wait_for(lambda: len(self.txns(pred)) >= n, timeout=60, what=what)
        except AssertionError:
            raise AssertionError(f"{what}: got {len(self.txns(pred))}\n"
                                 f"log:\n{self.fm.logtext()[-4000:]}")
        return self.txns(pred)

    def assert_signed(self, data, what, must_cover=()):
        """Both signatures of data verify with d=lists.test; tampering fails."""
        m = email.message_from_bytes(data)
        sigs = m.get_all("DKIM-Signature") or []
        self.assertEqual(2, len(sigs), f"{what}: two signatures (rsa, ed25519)")
        algs = []
        for i in range(2):
            t = sig_tags(data, i)
            algs.append(t["a"])
            self.assertEqual("lists.test", t["d"], what)
            self.assertEqual("relaxed/relaxed", t["c"], what)
            self.assertNotIn("l", t, f"{what}: no l=")
            h = [x.lower() for x in t["h"].split(":")]
            self.assertIn("from", h, what)
            for name in must_cover:
                self.assertIn(name.lower(), h, f"{what}: h= covers {name}")
            self.assertTrue(_verify_idx(data, i, self.dnsfunc),
                            f"{what}: signature {i} ({t['a']}) does not verify")
        self.assertEqual(["rsa-sha256", "ed25519-sha256"], algs, what)
        # tampering: one body byte, one signed header
        head, _, body = data.partition(b"\r\n\r\n")
        i = max(body.find(b"e"), 0)
        bad_body = head + b"\r\n\r\n" + body[:i] + b"E" + body[i + 1:]
        self.assertFalse(_verify_idx(bad_body, 0, self.dnsfunc), f"{what}: tampered body")
        self.assertFalse(_verify_idx(bad_body, 1, self.dnsfunc), f"{what}: tampered body")
        bad_head = re.sub(rb"(?mi)^Subject:", b"Subject: X", data, count=1) \
            if re.search(rb"(?mi)^Subject:", data) else data.replace(b"From:", b"From: x", 1)
        self.assertNotEqual(bad_head, data)
        self.assertFalse(_verify_idx(bad_head, 0, self.dnsfunc), f"{what}: tampered header")
        self.assertFalse(_verify_idx(bad_head, 1, self.dnsfunc), f"{what}: tampered header")


def _verify_idx(data, i, dnsfunc):
    """dkimpy's verification of the i-th DKIM-Signature of data."""
    d = dkim.DKIM(data)
    try:
        return d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


class TestDkimDelivery(DkimDeliveryCase):

    def test_batched_post_downgraded_copy_confirmation(self):
        self.start()
        self.make_list(["bob@a.test", "cy@a.test", "dee@b.test"])
        self.post(POST8)
        got = self.wait_txns(lambda t: b"Gr" in t.data and b"dev@lists.test" in t.data, 2,
                             "the post at a.test and b.test")
        by_sink = {s.name: t for s, t in got}
        batch = by_sink["mx0.test"]
        self.assertEqual(["bob@a.test", "cy@a.test"], sorted(batch.rcpts), "one batch")
        self.assertIn("Grüße".encode(), batch.data, "8-bit as is at a server with 8BITMIME")
        self.assert_signed(batch.data, "batched post", ["List-Id", "Subject", "Content-Type"])
        down = by_sink["mx1.test"]
        self.assertNotIn("Grüße".encode(), down.data, "downgraded for a server without it")
        self.assertTrue(all(b < 128 for b in down.data.partition(b"\r\n\r\n")[2]),
                        "the body downgraded (the sink offers SMTPUTF8: headers stay)")
        self.assert_signed(down.data, "downgraded copy", ["Content-Transfer-Encoding"])
        self.assertNotEqual(sig_tags(batch.data, 0)["bh"], sig_tags(down.data, 0)["bh"])
        # a confirmation (a notice of the list)
        self.post(b"From: new@c.test\r\nTo: dev-subscribe@lists.test\r\nSubject: sub\r\n\r\n.\r\n",
                  to="dev-subscribe@lists.test", sender="new@c.test")
        conf = self.wait_txns(lambda t: t.rcpts == ["new@c.test"], 1, "the confirmation")
        self.assertRegex(email.message_from_bytes(conf[0][1].data)["Subject"], r"^confirm ")
        self.assert_signed(conf[0][1].data, "confirmation", ["Reply-To"])
        self.assertIn("dkim: mail of lists.test is signed", self.fm.logtext())

    def test_personalized_copies_and_goodbye(self):
        self.start()
        members = ["bob@a.test", "cy@a.test", "dee@b.test", "eve@c.test"]
        self.make_list(members, personalize="yes", footer="You are %m.")
        self.post(POST8)
        got = self.wait_txns(lambda t: b"dev@lists.test" in t.data and b"Gr" in t.data,
                             len(members), "the personal copies")
        bhs = set()
        for s, t in got:
            self.assertEqual(1, len(t.rcpts))
            self.assert_signed(t.data, f"copy to {t.rcpts[0]}",
                               ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"])
            m = email.message_from_bytes(t.data)
            self.assertIn(t.rcpts[0], m.get_payload(decode=True).decode())
            bhs.add(sig_tags(t.data, 0)["bh"])
            # the signature is this copy's: another member's
            # List-Unsubscribe under it fails
            other = re.sub(rb"dev-leave\+[^@]+@", b"dev-leave+1-x-y@", t.data, count=1)
            self.assertNotEqual(other, t.data)
            self.assertFalse(_verify_idx(other, 0, self.dnsfunc))
        self.assertEqual(len(members), len(bhs), "a %m footer: a body hash per copy")
        # a goodbye: eve leaves through her copy's mailto: token
        eve = [t for s, t in got if t.rcpts == ["eve@c.test"]][0]
        lu = re.sub(r"\s+", "", email.message_from_bytes(eve.data)["List-Unsubscribe"])
        mailto = re.search(r"<mailto:([^>]+)>", lu).group(1)
        self.post(f"From: eve@c.test\r\nTo: {mailto}\r\nSubject: unsubscribe\r\n\r\n.\r\n",
                  to=mailto, sender="eve@c.test")
        bye = self.wait_txns(lambda t: t.rcpts == ["eve@c.test"] and b"Gr" not in t.data, 1,
                             "the goodbye")
        self.assert_signed(bye[0][1].data, "goodbye")

    def test_personalized_without_markers_shares_the_body_hash(self):
        self.start()
        members = ["bob@a.test", "cy@a.test", "eve@c.test"]
        self.make_list(members, personalize="yes")
        self.post(POST8)
        got = self.wait_txns(lambda t: b"Gr" in t.data, len(members), "the copies")
        for s, t in got:
            self.assert_signed(t.data, f"copy to {t.rcpts[0]}",
                               ["List-Unsubscribe", "List-Unsubscribe-Post"])
        self.assertEqual(1, len({sig_tags(t.data, 0)["bh"] for s, t in got}))
        self.assertEqual(len(members), len({sig_tags(t.data, 0)["b"] for s, t in got}))

    def digest_list(self, members, digest=(), text=(), **settings):
        """dev@lists.test with digests sent only by `digest send`."""
        self.make_list(members, digest_interval=0, digest_max_posts=0, digest_max_size=0,
                       **settings)
        for who in digest:
            self.fm.cli("member", "set", "dev@lists.test", who, "delivery=digest")
        for who in text:
            self.fm.cli("member", "set", "dev@lists.test", who, "delivery=digest-text")

    def send_digest(self, npending):
        wait_for(lambda: self.q("SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"
                                )[0][0] == npending, timeout=30,
                 what=f"{npending} post(s) pending for the digest")
        out = self.fm.cli("digest", "send", "dev@lists.test").stdout
        self.assertIn(f"vol 1 issue 1, {npending} post(s)", out)

    def test_digests_are_signed(self):
        # a.test and c.test take 8-bit and UTF-8 headers, b.test neither
        # (the post's UTF-8 From: is a header inside the MIME digest's
        # body): each digest form is signed as sent, downgraded or not.
        self.sinks[1].smtputf8 = False
        self.start()
        dig, txt = ["dig@a.test", "dag@b.test"], ["txt@c.test", "tex@b.test"]
        self.digest_list(["reg@a.test"] + dig + txt, dig, txt)
        self.post(POST8)
        self.wait_txns(lambda t: t.rcpts == ["reg@a.test"], 1, "the post")
        self.send_digest(1)
        got = self.wait_txns(lambda t: b"Vol 1, Issue 1" in t.data, 4, "the digests")
        self.assertEqual(sorted(dig + txt), sorted(r for s, t in got for r in t.rcpts))
        for s, t in got:
            who = t.rcpts[0]
            m = email.message_from_bytes(t.data)
            self.assertEqual(who in dig, m.get_content_type() == "multipart/mixed", who)
            self.assertEqual(who in dig, b"multipart/digest" in t.data, who)
            self.assertIn(b"d1@ext.test", t.data, f"{who}: the post is in the digest")
            self.assert_signed(t.data, f"{m.get_content_type()} digest to {who}",
                               ["List-Id", "Subject", "Content-Type", "MIME-Version"])
            if who.endswith("@b.test"):
                self.assertTrue(all(b < 128 for b in t.data), f"{who}: downgraded to 7-bit")
                self.assertNotIn("SMTPUTF8", t.params, who)
            else:
                self.assertIn("Grüße".encode(), t.data, f"{who}: 8-bit as is")
        # four forms, four body hashes
        self.assertEqual(4, len({sig_tags(t.data, 0)["bh"] for s, t in got}))

    def test_personalized_digest_copies_are_signed_each(self):
        self.start()
        dig, txt = ["dig@a.test", "dag@a.test", "dug@c.test"], ["txt@a.test"]
        self.digest_list(["reg@a.test"] + dig + txt, dig, txt, personalize="yes")
        self.post(POST8)
        self.wait_txns(lambda t: t.rcpts == ["reg@a.test"], 1, "the post")
        self.send_digest(1)
        got = self.wait_txns(lambda t: b"Vol 1, Issue 1" in t.data, 4, "the digest copies")
        self.assertEqual(sorted(dig + txt), sorted(r for s, t in got for r in t.rcpts))
        lus = set()
        for s, t in got:
            self.assertEqual(1, len(t.rcpts), "a copy per member")
            who = t.rcpts[0]
            self.assert_signed(t.data, f"digest copy to {who}",
                               ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"])
            lu = re.sub(r"\s+", "", email.message_from_bytes(t.data)["List-Unsubscribe"])
            self.assertRegex(lu, r"<mailto:dev-leave\+[^>]+@lists\.test>", who)
            lus.add(lu)
            # the signature is this copy's: another member's
            # List-Unsubscribe under it fails
            other = re.sub(rb"dev-leave\+[^@]+@", b"dev-leave+1-x-y@", t.data, count=1)
            self.assertNotEqual(other, t.data)
            self.assertFalse(_verify_idx(other, 0, self.dnsfunc), who)
            self.assertFalse(_verify_idx(other, 1, self.dnsfunc), who)
        self.assertEqual(len(dig + txt), len(lus), "each copy its own List-Unsubscribe")

    def test_dsn_is_signed(self):
        # no list here: lists.test is not a local domain, its MX is a sink
        self.sinks[0].rcpt_reply["bad@a.test"] = "550 5.1.1 <bad@a.test>: no such user"
        self.start_all({"hostname": "mx.lists.test"})
        qid = self.inject(["bad@a.test", "ok@a.test"], sender="owner@lists.test")
        self.wait_states({"sent": 1, "failed": 1}, qid)
        ok = self.wait_txns(lambda t: t.rcpts == ["ok@a.test"], 1, "the message")
        self.assert_signed(ok[0][1].data, "a message of lists.test without a list")
        dsn = self.wait_txns(lambda t: t.rcpts == ["owner@lists.test"], 1, "the DSN")
        t = dsn[0][1]
        self.assertEqual("", t.mail_from)
        self.assertIn(b"multipart/report", t.data)
        self.assert_signed(t.data, "DSN")

    def test_a_bad_key_sends_unsigned_and_warns_once(self):
        # The stored rsa key is made unreadable: mail still goes, unsigned
        # by it (the ed25519 key still signs), with one warning.
        self.q_exec("UPDATE dkim_keys SET private_key = 'not a key' WHERE algorithm = 'rsa'")
        self.start()
        self.make_list(["bob@a.test", "dee@b.test"])
        self.post(POST8)
        got = self.wait_txns(lambda t: b"Gr" in t.data, 2, "the post")
        for s, t in got:
            sigs = email.message_from_bytes(t.data).get_all("DKIM-Signature") or []
            self.assertEqual(1, len(sigs))
            self.assertEqual("ed25519-sha256", sig_tags(t.data, 0)["a"])
            self.assertTrue(_verify_idx(t.data, 0, self.dnsfunc))
        self.assertEqual(1, self.fm.logtext().count("cannot sign, mail goes unsigned"))

    def q_exec(self, sql):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            c.execute(sql)


POSTFIX_MASTER = """\
{smtpd} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {host}:{port}")


@fmtest.require(shutil.which("postfix") or os.path.exists("/usr/sbin/postfix"),
                "postfix is not installed (scripts/deps)")
@fmtest.require(shutil.which("opendkim") or os.path.exists("/usr/sbin/opendkim"),
                "opendkim is not installed (scripts/deps)")
@fmtest.require(os.geteuid() == 0, "a private Postfix needs root")
class TestDkimPostfixOpenDkim(DkimDeliveryCase):
    """sinks[0]'s address is Postfix (the MX of a.test and lists.test),
    sinks[1] is where Postfix relays to, sinks[2] answers for c.test."""
    nsinks = 3
    mx = {"a.test": 0, "lists.test": 0, "c.test": 2}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fanmail-pf-")
        os.chmod(self.tmp, 0o755)  # the postfix user reaches its data_directory
        super().setUp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # Postfix listens where sinks[0] would
        self.sinks[0].start = self.sinks[0].stop = lambda: None

    def start_receiver(self):
        keys = os.path.join(self.tmp, "keys.txt")
        with open(keys, "w") as f:
            for name, value in self.records.items():
                f.write(f"{name} {value}\n")
        mport = free_port()
        conf = os.path.join(self.tmp, "opendkim.conf")
        with open(conf, "w") as f:
            f.write(f"Mode v\nSyslog no\nBackground no\nSocket inet:{mport}@127.0.0.1\n"
                    f"TestPublicKeys {keys}\nAuthservID mx.a.test\n"
                    # the client (fanmaild on loopback) is not "internal":
                    # internal mail would be signed, not verified
                    f"InternalHosts 192.0.2.1\nAlwaysAddARHeader yes\n"
                    f"PidFile {self.tmp}/opendkim.pid\n")
        self.odlog = open(os.path.join(self.tmp, "opendkim.log"), "w")
        self.od = subprocess.Popen(["opendkim", "-x", conf, "-f", "-v"], stdout=self.odlog,
                                   stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_opendkim)
        wait_port("127.0.0.1", mport)
        base = os.path.join(self.tmp, "postfix")
        self.pf_etc, spool, data = (os.path.join(base, d) for d in ("etc", "spool", "data"))
        for d in (self.pf_etc, spool, data):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        main = f"""\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.a.test
mydomain = a.test
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [{self.ip(1)}]:{self.port}
smtpd_milters = inet:127.0.0.1:{mport}
milter_default_action = tempfail
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
smtputf8_enable = no
biff = no
append_dot_mydomain = no
smtpd_banner = $myhostname ESMTP
"""
        with open(os.path.join(self.pf_etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.pf_etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER.format(smtpd=f"{self.ip(0)}:{self.port}"))
        self.pf_log = os.path.join(base, "maillog")
        p = subprocess.run(["postfix", "-c", self.pf_etc, "start"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(0, p.returncode, p.stdout + p.stderr + self.logs())
        self.addCleanup(self.stop_postfix)
        wait_port(self.ip(0), self.port)

    def stop_opendkim(self):
        self.od.terminate()
        try:
            self.od.wait(10)
        except subprocess.TimeoutExpired:
            self.od.kill()
            self.od.wait(10)
        self.odlog.close()

    def stop_postfix(self):
        subprocess.run(["postfix", "-c", self.pf_etc, "stop"], capture_output=True, timeout=60)
        time.sleep(0.5)
        subprocess.run(["postfix", "-c", self.pf_etc, "abort"], capture_output=True,
                       timeout=60)

    def logs(self):
        out = ""
        for p in (self.pf_log, os.path.join(self.tmp, "opendkim.log")):
            try:
                with open(p, errors="replace") as f:
                    out += f"--- {p}\n" + f.read()[-3000:]
            except OSError:
                pass
        return out

    def relayed(self, pred, n, what):
        try:
            wait_for(lambda: len([t for t in self.sinks[1].transactions if pred(t)]) >= n,
                     timeout=60, what=what)
        except AssertionError:
            raise AssertionError(f"{what}\n{self.logs()}\nfanmaild:\n"
                                 f"{self.fm.logtext()[-3000:]}")
        return [t for t in self.sinks[1].transactions if pred(t)]

    def assert_pass(self, t, what):
        m = email.message_from_bytes(t.data)
        ars = [re.sub(r"\s+", " ", a) for a in m.get_all("Authentication-Results") or []]
        ours = [a for a in ars if a.startswith("mx.a.test")]
        self.assertTrue(ours, f"{what}: no Authentication-Results of OpenDKIM: {ars}\n"
                              f"{self.logs()}")
        self.assertRegex(ours[0], r"dkim=pass [^;]*header\.d=lists\.test", what)
        # both signatures pass (rsa-sha256, ed25519-sha256)
        self.assertEqual(2, len(re.findall(r"dkim=pass", " ".join(ours))), f"{what}: {ours}")

    def test_post_and_personal_copy_pass_at_postfix_with_opendkim(self):
        self.start_receiver()
        self.start()
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@c.test")
        self.fm.cli("member", "add", "dev@lists.test", "bob@a.test", "cy@a.test")
        self.fm.cli("list", "create", "solo@lists.test", "--policy", "open",
                    "--owner", "owner@c.test")
        self.fm.cli("member", "add", "solo@lists.test", "dan@a.test")
        self.fm.cli("list", "set", "solo@lists.test", "personalize=yes", "footer=You are %m.")
        self.post(b"From: zoe@ext.test\r\nTo: dev@lists.test\r\nSubject: batched\r\n"
                  b"Message-ID: <pf1@ext.test>\r\n\r\nA post for the batch.\r\n")
        self.post(b"From: zoe@ext.test\r\nTo: solo@lists.test\r\nSubject: personal\r\n"
                  b"Message-ID: <pf2@ext.test>\r\n\r\nA post for one.\r\n",
                  to="solo@lists.test")
        post = self.relayed(lambda t: b"A post for the batch." in t.data, 1, "the post")
        self.assert_pass(post[0], "batched post")
        copy = self.relayed(lambda t: b"A post for one." in t.data, 1, "the copy")
        self.assertIn(b"List-Unsubscribe-Post", copy[0].data)
        self.assert_pass(copy[0], "personalized copy")

    def test_digests_pass_at_postfix_with_opendkim(self):
        self.start_receiver()
        self.start()
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@c.test")
        self.fm.cli("member", "add", "dev@lists.test", "dig@a.test", "txt@a.test")
        self.fm.cli("list", "set", "dev@lists.test", "digest_interval=0",
                    "digest_max_posts=0", "digest_max_size=0")
        self.fm.cli("member", "set", "dev@lists.test", "dig@a.test", "delivery=digest")
        self.fm.cli("member", "set", "dev@lists.test", "txt@a.test", "delivery=digest-text")
        self.post(b"From: zoe@ext.test\r\nTo: dev@lists.test\r\nSubject: digested\r\n"
                  b"Message-ID: <pf3@ext.test>\r\n\r\nA post for the digest.\r\n")
        wait_for(lambda: self.q("SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"
                                )[0][0] == 1, timeout=30, what="the post pending")
        self.assertIn("vol 1 issue 1, 1 post(s)",
                      self.fm.cli("digest", "send", "dev@lists.test").stdout)
        got = self.relayed(lambda t: b"Vol 1, Issue 1" in t.data, 2, "the digests")
        self.assertEqual(["dig@a.test", "txt@a.test"], sorted(r for t in got for r in t.rcpts))
        for t in got:
            self.assertIn(b"A post for the digest.", t.data)
            kind = "MIME" if b"multipart/digest" in t.data else "text"
            self.assert_pass(t, f"{kind} digest to {t.rcpts[0]}")

    def test_dsn_passes_at_postfix_with_opendkim(self):
        self.sinks[2].rcpt_reply["bad@c.test"] = "550 5.1.1 <bad@c.test>: no such user"
        self.start_receiver()
        self.start_all({"hostname": "mx.lists.test"})
        qid = self.inject(["bad@c.test"], sender="owner@lists.test")
        self.wait_states({"failed": 1}, qid)
        dsn = self.relayed(lambda t: b"multipart/report" in t.data, 1, "the DSN")
        self.assertEqual(["owner@lists.test"], dsn[0].rcpts)
        self.assert_pass(dsn[0], "DSN")


if __name__ == "__main__":
    unittest.main()
