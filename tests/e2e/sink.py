"""A receiving SMTP server for delivery tests, in plain Python sockets.

It binds any 127.0.0.x address (all of 127/8 is loopback on Linux) or ::1,
records every connection and transaction, and can be told to misbehave:

    s = Sink("127.0.0.2", port)
    s.rcpt_reply["bad@a.test"] = "550 5.1.1 no such user"
    s.rcpt_replies["slow@a.test"] = ["451 4.3.0 try later"]  # then accept
    s.greeting = "421 4.7.0 go away"
    s.drop_in_data = 1          # close the next 1 connection(s) mid-DATA
    s.stall = 30                # sleep before the greeting
    s.starttls = (cert, key)    # offer STARTTLS
    s.auth = ("user", "pass")   # require AUTH PLAIN
    s.smtputf8 = False          # do not offer SMTPUTF8
    s.eightbitmime = False      # do not offer 8BITMIME
    s.rcpt_limit = 1            # "452 4.5.3" to RCPTs past the 1st of a transaction
    s.data_reply = "250-ok\r\n550 5.0.0 no"  # any reply may be several lines
    s.start()
    ...
    s.transactions  # list of Txn(mail_from, rcpts, data, conn, tls, helo)
    s.reads         # (conn, k, line): each command line and the recv() it ended in
    s.peak          # most sessions open at once on this sink (from the
                    # first command to QUIT or the end of the connection)
    s.busy.peak     # most transactions in progress at once (MAIL to reply)
    s.mail_replies_at[3] = "451 4.7.1 slow down"  # reply to the 3rd MAIL
    g = Gauge(); s.gauge = g   # share one count over several sinks (g.peak)

Every socket operation has a time-out; stop() closes everything.
"""
import base64
import select
import socket
import ssl
import threading
import time


class Gauge:
    """Counts sessions open at once; one Gauge may be shared by sinks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.samples = []  # (monotonic time, active, what) after every change
        self.socks = {}  # key -> socket of each session counted open

    def add(self, n, what=None):
        with self.lock:
            self._add(n, what)

    def _add(self, n, what):
        self.active += n
        self.peak = max(self.peak, self.active)
        self.samples.append((time.monotonic(), self.active, what))

    @staticmethod
    def _gone(sock):
        # The kernel knows a peer's close at once; the thread reading that
        # socket may not run for milliseconds. (A socket handed over to TLS
        # has no descriptor of its own any more: not known, so not gone.)
        if sock.fileno() < 0:
            return False
        try:
            # select() first: recv() on a socket with a time-out waits
            if not select.select([sock], [], [], 0)[0]:
                return False
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        except (OSError, ValueError):
            return True

    def open(self, key, sock, what=None):
        """Counts a session open; first counts closed every session whose
        client has already closed it, as seen by the kernel, so that the
        order of the samples is the order on the wire even when the other
        session's thread has not yet noticed its end."""
        with self.lock:
            if key in self.socks:
                return
            for k, s in list(self.socks.items()):
                if self._gone(s):
                    del self.socks[k]
                    self._add(-1, f"{k[0]} #{k[1]} closed (seen at the next open)")
            self.socks[key] = sock
            self._add(1, what)

    def close(self, key, what=None):
        with self.lock:
            if self.socks.pop(key, None) is not None:
                self._add(-1, what)


class LineReader:
    """readline() over recv(), counting the recv() calls on the connection:
    lines that end in the same chunk were on the wire together, before the
    sink replied to any of them."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pos = 0  # start of the unread part of buf
        self.nrecv = 0
        self.chunk = 0  # the recv() the last line returned ended in

    def readline(self, limit):
        while True:
            i = self.buf.find(b"\n", self.pos, self.pos + limit)
            if i >= 0 or len(self.buf) - self.pos >= limit:
                break
            data = self.sock.recv(65536)
            if not data:
                break
            self.nrecv += 1
            self.buf = self.buf[self.pos:] + data
            self.pos = 0
        end = i + 1 if i >= 0 else min(self.pos + limit, len(self.buf))
        line = self.buf[self.pos:end]
        self.pos = end
        self.chunk = self.nrecv
        return line


class Txn:
    def __init__(self, conn, helo, tls, mail_from, params, rcpts, data):
        self.conn = conn
        self.helo = helo
        self.tls = tls
        self.mail_from = mail_from
        self.params = params
        self.rcpts = rcpts
        self.data = data
        self.start = None  # monotonic time of the MAIL command
        self.end = None  # monotonic time of the reply to the end of data

    def __repr__(self):
        return f"Txn(conn={self.conn}, from={self.mail_from!r}, rcpts={len(self.rcpts)})"


class Sink:
    def __init__(self, host, port, name=None):
        self.host = host
        self.port = port
        self.name = name or f"sink-{host}"
        self.lock = threading.Lock()
        self.transactions = []
        self.connections = 0
        self.commands = []  # (conn, line) of every command line
        self.reads = []  # (conn, k, line): the line ended in the k-th recv()
        self.rcpt_reply = {}  # rcpt -> reply for every attempt
        self.rcpt_replies = {}  # rcpt -> list of replies, used up in turn
        self.mail_reply = None
        self.data_reply = None  # reply after the end of data
        self.greeting = None  # e.g. "421 4.7.0 busy"
        self.greetings = []  # used up in turn, then greeting
        self.drop_in_data = 0
        self.stall = 0
        self.data_delay = 0  # seconds before the reply to the end of data
        self.ehlo = True
        self.pipelining = True
        self.smtputf8 = True
        self.eightbitmime = True
        self.rcpt_limit = 0  # > 0: 452 4.5.3 past this many RCPTs in a transaction
        self.rcpt_limited = 0  # RCPTs answered 452 because of rcpt_limit
        self.size = 0
        self.starttls = None
        self.auth = None
        self.bare_lf = []  # transactions whose data held a bare CR or LF
        self.own = Gauge()  # sessions open at once on this sink
        self.gauge = None  # optional Gauge shared with other sinks
        self._open = {}  # conn number -> gauges it counts in
        self._ended = set()  # conn numbers that sent QUIT or closed
        self.busy = Gauge()  # transactions in progress (MAIL to DATA reply)
        self._busy = {}  # conn number -> start of its open transaction
        self.mail_count = 0  # MAIL commands seen
        self.mail_replies_at = {}  # k -> reply to the k-th MAIL (1-based), once
        self.replied = []  # (monotonic time, reply) of mail_replies_at used
        self._sock = None
        self._threads = []
        self._conns = []
        self._tls = {}
        self._stop = False

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(256)
        s.settimeout(0.2)
        self._sock = s
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop = True
        if self._sock is not None:
            self._sock.close()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
                self._conns.append(c)
            t = threading.Thread(target=self._session, args=(c, n), daemon=True)
            t.start()
            self._threads.append(t)

    def rcpt_count(self):
        with self.lock:
            return sum(len(t.rcpts) for t in self.transactions)

    def all_rcpts(self):
        with self.lock:
            return [r for t in self.transactions for r in t.rcpts]

    # --- one connection ---

    def _txn_begin(self, n):
        with self.lock:
            if n in self._busy:
                return
            self._busy[n] = time.monotonic()
        self.busy.add(1, f"{self.host} #{n} MAIL")

    def _txn_end(self, n):
        with self.lock:
            if self._busy.pop(n, None) is None:
                return
        self.busy.add(-1, f"{self.host} #{n} done")

    def _opened(self, n, sock):
        # Counted from the client's first command, not from accept(): the
        # client may close one connection and open the next in the same
        # instant, and this thread may see the new one before the other
        # thread sees the old one's end; the first command is a round trip
        # later, and Gauge.open() asks the kernel about the other sessions,
        # so the order seen here is the order on the wire.
        with self.lock:
            if n in self._open or n in self._ended:
                return
            gauges = [g for g in (self.own, self.gauge) if g is not None]
            self._open[n] = gauges
        for g in gauges:
            g.open((self.host, n), sock, f"{self.host} #{n} open")

    def _closed(self, n):
        # Counted as closed when QUIT arrives, before the 221: the client
        # may open its next connection as soon as it reads the 221.
        with self.lock:
            gauges = self._open.pop(n, [])
            self._ended.add(n)
        for g in gauges:
            g.close((self.host, n), f"{self.host} #{n} closed")

    @property
    def peak(self):
        return self.own.peak

    def _session(self, c, n):
        c.settimeout(30)
        try:
            self._dialog(c, n)
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            self._txn_end(n)
            self._closed(n)
            with self.lock:
                mine = [self._tls.pop(n)] if n in self._tls else []
            for x in mine + [c]:
                try:
                    x.close()
                except OSError:
                    pass

    def _dialog(self, c, n):
        if self.stall:
            time.sleep(self.stall)
        f = LineReader(c)

        def send(line):
            c.sendall(line.encode() + b"\r\n")

        with self.lock:
            g = self.greetings.pop(0) if self.greetings else self.greeting
        if g:
            send(g)
            if g.startswith("421") or g.startswith("5"):
                return
        send(f"220 {self.name} ESMTP test sink")
        helo, tls, authed = None, False, False
        mail_from, params, rcpts = None, "", []
        while True:
            raw = f.readline(4096)
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            self._opened(n, c)
            with self.lock:
                self.commands.append((n, line))
                self.reads.append((n, f.chunk, line))
            verb = line[:4].upper()
            if verb == "EHLO":
                if not self.ehlo:
                    send("502 5.5.2 EHLO not understood")
                    continue
                helo = line[5:]
                ext = []
                if self.pipelining:
                    ext.append("PIPELINING")
                ext.append(f"SIZE {self.size}" if self.size else "SIZE")
                if self.smtputf8:
                    ext.append("SMTPUTF8")
                if self.eightbitmime:
                    ext.append("8BITMIME")
                if self.starttls and not tls:
                    ext.append("STARTTLS")
                if self.auth:
                    ext.append("AUTH PLAIN")
                lines = [self.name] + ext
                for i, e in enumerate(lines):
                    send(("250 " if i == len(lines) - 1 else "250-") + e)
            elif verb == "HELO":
                helo = line[5:]
                send(f"250 {self.name}")
            elif line.upper() == "STARTTLS" and self.starttls and not tls:
                send("220 2.0.0 go ahead")
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self.starttls)
                c = ctx.wrap_socket(c, server_side=True)
                with self.lock:
                    self._conns.append(c)
                    self._tls[n] = c
                f = LineReader(c)
                tls = True
                helo = None
            elif verb == "AUTH":
                parts = line.split()
                if not self.auth or len(parts) != 3 or parts[1].upper() != "PLAIN":
                    send("504 5.5.4 unrecognized authentication type")
                    continue
                want = b"\0" + self.auth[0].encode() + b"\0" + self.auth[1].encode()
                if base64.b64decode(parts[2]) == want:
                    authed = True
                    send("235 2.7.0 Authentication successful")
                else:
                    send("535 5.7.8 authentication failed")
            elif verb == "MAIL":
                if self.auth and not authed:
                    send("530 5.7.0 authentication required")
                    continue
                with self.lock:
                    self.mail_count += 1
                    once = self.mail_replies_at.pop(self.mail_count, None)
                    if once:
                        self.replied.append((time.monotonic(), once))
                if once or self.mail_reply:
                    send(once or self.mail_reply)
                    continue
                rest = line[10:]
                end = rest.find(">")
                mail_from, params, rcpts = rest[1:end], rest[end + 1:].strip(), []
                nrcpt = 0
                self._txn_begin(n)
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                if mail_from is None:
                    send("503 5.5.1 need MAIL")
                    continue
                rest = line[8:]
                addr = rest[1:rest.find(">")]
                with self.lock:
                    seq = self.rcpt_replies.get(addr)
                    reply = seq.pop(0) if seq else self.rcpt_reply.get(addr)
                nrcpt += 1
                if not reply and self.rcpt_limit and nrcpt > self.rcpt_limit:
                    with self.lock:
                        self.rcpt_limited += 1
                    reply = "452 4.5.3 too many recipients"
                if reply:
                    send(reply)
                else:
                    rcpts.append(addr)
                    send("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self._txn_end(n)
                    send("554 5.5.1 no valid recipients")
                    mail_from = None
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                with self.lock:
                    drop = self.drop_in_data > 0
                    if drop:
                        self.drop_in_data -= 1
                chunks = []
                while True:
                    d = f.readline(1 << 20)
                    if not d:
                        return
                    if drop and len(chunks) >= 2:
                        c.shutdown(socket.SHUT_RDWR)
                        return
                    if d == b".\r\n":
                        break
                    chunks.append(d)
                data = b"".join(chunks)
                bad = self._bare(data)
                # undo dot-stuffing
                data = b"".join(l[1:] if l.startswith(b".") else l for l in chunks)
                t = Txn(n, helo, tls, mail_from, params, rcpts, data)
                if self.data_delay:
                    time.sleep(self.data_delay)
                t.end = time.monotonic()
                with self.lock:
                    t.start = self._busy.get(n)
                    if bad:
                        self.bare_lf.append(t)
                    self.transactions.append(t)
                self._txn_end(n)
                send(self.data_reply or "250 2.0.0 Ok: queued")
                mail_from, rcpts = None, []
            elif verb == "RSET":
                self._txn_end(n)
                mail_from, rcpts = None, []
                send("250 2.0.0 Ok")
            elif verb == "NOOP":
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self._closed(n)
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 command not recognized")

    @staticmethod
    def _bare(data):
        i = 0
        while True:
            j = data.find(b"\n", i)
            if j < 0:
                break
            if j == 0 or data[j - 1:j] != b"\r":
                return True
            i = j + 1
        return data.replace(b"\r\n", b"").find(b"\r") >= 0


def wait_for(pred, timeout=30.0, step=0.05, what="condition"):
    """Polls pred() until it is true; raises after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
