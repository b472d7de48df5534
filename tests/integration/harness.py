"""harness.py: the real parts for integration tests and the demo.

Starts a redis-server on a free port in a temp dir, our mock-cluster
Kafka broker (tests/tools/mockbroker.c), and journeyd as its own process;
produces and consumes with tests/tools/ktool.c; speaks RESP to Redis
directly so tests depend on nothing beyond Python's standard library.
Every wait is bounded; nothing here asserts on timing.
"""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77  # ctest SKIP_RETURN_CODE
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse_iso_ms(text):
    """journeyd's ISO-8601 UTC times ("...T...sss.mmmZ") as epoch ms."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000 + t.microsecond // 1000


def shared_data(name):
    """The path of a data set in ../shared/data beside the checkout, or None
    (the caller then skips: tests never depend on it being there)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "..", "shared", "data", name)
    if not os.path.exists(path):
        print("skipped: %s is absent" % path)
        return None
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=60.0, interval=0.05, show=None):
    """Polls cond() until it returns a true value; fails after timeout,
    saying what show() returns then (the figure that never came, say)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what + (
                "" if show is None else " (now %r)" % (show(),)))
        time.sleep(interval)


def parse_metrics(text):
    """Prometheus text as {name: {frozenset of (label, value): number}};
    fails on a line that is not a sample, or a family without # HELP and
    # TYPE. Label values stay escaped."""
    helped, typed, samples = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed[line.split()[2]] = line.split()[3]
        elif line:
            m = SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            name, labels, value = m.groups()
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            family = base if typed.get(base) == "histogram" else name
            assert family in helped and family in typed, \
                "%s has no # HELP or # TYPE" % name
            key = frozenset(LABEL.findall(labels or ""))
            samples.setdefault(name, {})[key] = float(value)
    return samples


# the fields of an entry of a customer's list of changes, in order
CHANGE_FIELDS = ("kind", "from", "to", "at", "event", "event_id", "alert_id",
                 "detail")

def unpack_customer(data, table=()):
    """The fields of a packed journey state (pipeline/customer.c,
    customer_pack), formatted as customer_encode formats them; table is
    the name table (journey:names) its numbered names are numbers of."""
    pos = 0

    def byte():
        nonlocal pos
        pos += 1
        return data[pos - 1]

    def uvar():
        v, shift = 0, 0
        while True:
            b = byte()
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v

    def svar():
        u = uvar()
        return (u >> 1) ^ -(u & 1)

    def text():
        nonlocal pos
        n = uvar()
        pos += n
        return data[pos - n:pos].decode("utf-8", "replace")

    def counts(prefix, other_name):
        names = []
        for _ in range(uvar()):
            names.append(text() if fmt == 1 else name())
            out[prefix + names[-1]] = str(uvar())
        other = uvar()
        if other:
            out[other_name] = str(other)
        return names

    def iso(ms):
        t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)

    def name(before=()):
        """format 2's name (put_name): empty, written out, one of before
        (names the state holds before it) or a number of the table"""
        r = uvar()
        if r < 2:
            return text() if r == 1 else ""
        r -= 2
        return before[r] if r < len(before) else table[r - len(before)]

    version = int.from_bytes(data[:8], "big")
    pos = 8
    fmt = byte()
    assert fmt in (1, 2, 3), "not a packed journey state (format %d)" % fmt
    out = {}
    stage = text() if fmt == 1 else None
    if fmt >= 2:
        pos += 4    # the name table's tag
    t0 = svar()
    out["stage_at"] = iso(t0 + svar())
    out["first_seen"] = iso(t0)
    out["last_seen"] = iso(t0 + svar())
    risk_at = t0 + svar()
    entered = []
    for _ in range(uvar()):
        entered.append(text() if fmt == 1 else name())
        out["at:" + entered[-1]] = iso(t0 + svar())
    if fmt >= 2:
        stage = name(entered)
    if stage:
        out["stage"] = stage
    out["events"] = str(uvar())
    out["v"] = str(version)
    last_channel = text() if fmt == 1 else None
    segment = text() if fmt == 1 else name()
    mseg = text() if fmt == 1 else name([segment, "other"])
    home = text() if fmt == 1 else None
    sources = []
    for _ in range(uvar()):
        sources.append(text() if fmt == 1 else name())
        out["off:" + sources[-1]] = str(svar())
    if fmt >= 2:
        home = name(sources)
    counts("n:", "n_other")
    channels = counts("c:", "c_other")
    if fmt >= 2:
        last_channel = name(channels)
    out["last_channel"] = last_channel
    for field, value in (("segment", segment), ("mseg", mseg),
                         ("home", home)):
        if value:
            out[field] = value
    ids = ["%013x" % uvar() for _ in range(uvar())]
    level = ("low", "medium", "high")[uvar()]
    mask = uvar()
    whole = uvar() if fmt >= 2 else 0
    sums = {}
    for i, sum_name in enumerate(("sent_w", "sent_ws", "pain", "eng",
                                  "eng_peak", "risk", "value")):
        if whole & (1 << i):
            sums[sum_name] = float(uvar())
        elif mask & (1 << i):
            sums[sum_name] = struct.unpack("<d", data[pos:pos + 8])[0]
            pos += 8
        else:
            sums[sum_name] = 0.0
    if mask & (1 << 7):
        out["churned"] = iso(t0 + svar())
    if mask & (1 << 8):
        out["indexed"] = iso(t0 + svar())
    assert pos == len(data), "trailing bytes in a packed journey state"
    if sums["value"]:
        out["value"] = "%.17g" % sums["value"]
    # in customer_encode's order, and on its conditions
    for sum_name, shown in (("sent_w", "sent_w"), ("sent_ws", "sent_w"),
                            ("pain", "pain"), ("eng", "eng"),
                            ("eng_peak", "eng")):
        if sums[shown] > 0:
            out[sum_name] = "%.17g" % sums[sum_name]
    out["risk"] = "%.3f" % sums["risk"]
    out["risk_level"] = level
    out["risk_at"] = iso(risk_at)
    if ids:
        out["ids"] = " ".join(ids)
    return out


class Redis:
    """A minimal RESP2 client: enough for tests to read what journeyd wrote."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), 5)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bulk(self, n, raw):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data if raw else data.decode("utf-8", "replace")

    def _reply(self, raw=False):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._bulk(n, raw)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(raw) for _ in range(n)]
        raise RuntimeError("redis: bad reply %r" % line)

    def __call__(self, *args, raw=False):
        """The reply; bulk strings as bytes when raw, else as text."""
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        for attempt in (0, 1):  # the server may have been restarted
            try:
                if self.sock is None:
                    self.connect()
                self.sock.sendall(b"".join(out))
                return self._reply(raw)
            except OSError:
                self.sock = None
                if attempt:
                    raise

    def hgetall(self, key):
        flat = self("HGETALL", key)
        return dict(zip(flat[0::2], flat[1::2]))

    def customer(self, cid, prefix="journey:"):
        """A customer's state as journeyctl and /api/customer show its
        fields (all but the derived "due"), read from its packed form;
        {} when there is no such customer."""
        data = self("GET", "%s{%s}" % (prefix, cid), raw=True)
        if data is None:
            return {}
        # read after the state: it has every name the state numbers
        return unpack_customer(data, self("LRANGE", prefix + "names", 0, -1))

    def changes(self, cid, prefix="journey:"):
        """A customer's list of changes, oldest first, each as a dict of
        the fields the README names (tab-separated in Redis)."""
        entries = self("LRANGE", "%s{%s}:changes" % (prefix, cid), 0, -1)
        return [dict(zip(CHANGE_FIELDS, e.split("\t"))) for e in entries]

    def scan_keys(self, pattern):
        cursor, keys = "0", []
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            keys.extend(batch)
            if cursor == "0":
                return keys


class Feeder(threading.Thread):
    """A thread whose join raises what its work raised."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work, self.error = work, None

    def run(self):
        try:
            self.work()
        except BaseException as e:  # raised again by join()
            self.error = e

    def join(self, timeout=None):
        super().join(timeout)
        if self.error is not None:
            raise AssertionError("feeding the stream failed: %r" %
                                 self.error)


class Stack:
    """redis-server + mock broker + journeyd, torn down on exit."""

    TOPICS = {"touchpoints": 4, "journey.stage-change": 4,
              "journey.churn-risk": 2, "journey.dead-letter": 2}

    def __init__(self, build, name="journeyd-test", topics=None):
        self.build = os.path.abspath(build)
        self.bin = {
            "journeyd": os.path.join(self.build, "journeyd"),
            "mockbroker": os.path.join(self.build, "tests", "mockbroker"),
            "ktool": os.path.join(self.build, "tests", "ktool"),
            "loadgen": os.path.join(self.build, "tests", "loadgen"),
            "journeyctl": os.path.join(self.build, "journeyctl"),
        }
        self.tmp = tempfile.mkdtemp(prefix=name + "-")
        self.topics = dict(topics or self.TOPICS)
        self.redis_proc = self.broker_proc = None
        self.daemons = []
        self.redis = None
        self.brokers = None
        self.redis_port = None
        self.http_port = None

    # -- lifecycle -------------------------------------------------------
    def __enter__(self):
        try:
            self.start_redis()
            self.start_broker()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self.print_logs()
        finally:
            self.close()

    def print_logs(self, lines=60):
        """The end of each journeyd's log, to stderr: a failure seen only
        in CI says what journeyd was doing."""
        for p in self.daemons:
            if getattr(p, "log_path", None) is None:    # not a journeyd
                continue
            try:
                tail = self.journeyd_log(p).splitlines()[-lines:]
            except OSError:
                continue
            sys.stderr.write("--- last %d lines of journeyd %d's log ---\n"
                             % (len(tail), p.pid))
            sys.stderr.write("\n".join(tail) + "\n")

    def close(self):
        for p in self.daemons:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in (self.broker_proc, self.redis_proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("JOURNEYD_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_redis(self, appendonly=True):
        """Starts redis-server; again on the same port and data after a
        kill. appendonly False: from the RDB snapshot in its directory (a
        server with an append-only file ignores the snapshot)."""
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server is not installed")
        self.redis_port = self.redis_port or free_port()
        self.redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port),
             "--bind", "127.0.0.1", "--dir", self.tmp, "--save", "",
             "--appendonly", "yes" if appendonly else "no",
             "--appendfsync", "everysec",
             "--logfile", os.path.join(self.tmp, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.redis = Redis(self.redis_port)

        def up():
            if self.redis_proc.poll() is not None:
                raise AssertionError("redis-server exited (port %d taken?)"
                                     % self.redis_port)
            try:
                self.redis.connect()
                info = self.redis("INFO", "server")  # answered loading
                ready = self.redis("PING") == "PONG"
            except (OSError, RuntimeError):  # RuntimeError: -LOADING
                return False
            # ours, not another test's that took the port meanwhile
            return ready and "process_id:%d\r\n" % self.redis_proc.pid \
                in info
        wait_for("redis-server", up, 20)

    def start_other_redis(self, name, *args):
        """Another redis-server, stopped with the stack, with a directory
        of its own under the stack's; args say where it listens, and how
        it runs."""
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        p = subprocess.Popen(
            ["redis-server", "--dir", d, "--save", "", "--logfile",
             os.path.join(d, "redis.log")] + list(args),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.daemons.append(p)
        return p

    def kill_redis(self):
        self.redis_proc.kill()
        self.redis_proc.wait()

    def signal_redis(self, sig):
        self.redis_proc.send_signal(sig)

    def start_broker(self):
        args = [self.bin["mockbroker"], "-b", "3"]
        args += ["%s:%d" % (t, n) for t, n in self.topics.items()]
        self.broker_proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.tmp, "broker.log"), "w"), text=True)
        self.brokers = self.broker_proc.stdout.readline().strip()
        if not self.brokers:
            raise AssertionError("mockbroker printed no bootstrap list")

    def broker_command(self, line):
        self.broker_proc.stdin.write(line + "\n")
        self.broker_proc.stdin.flush()
        return self.broker_proc.stdout.readline().strip()

    # -- journeyd --------------------------------------------------------
    def write_config(self, extra="", name="journeyd.conf", session_ms=6000,
                     clock="event", http=False):
        """The tests replay synthetic history, so deadlines fall due by
        stream time unless a test asks for the wall clock. http: serve the
        HTTP endpoint on a free port (http_get); off otherwise, so that
        several journeyds can share a config."""
        path = os.path.join(self.tmp, name)
        if http:
            self.http_port = self.http_port or free_port()
        with open(path, "w") as f:
            f.write("http = %s\n" % ("127.0.0.1:%d" % self.http_port
                                     if http else "off"))
            f.write("brokers = %s\n" % self.brokers)
            f.write("clock = %s\n" % clock)
            f.write("redis = 127.0.0.1:%d\n" % self.redis_port)
            f.write("kafka.consumer.session.timeout.ms = %d\n" % session_ms)
            f.write("kafka.consumer.heartbeat.interval.ms = %d\n" %
                    min(500, session_ms // 4))
            f.write(extra)
        return path

    def start_journeyd(self, config=None, log_name=None, env=None):
        """env: variables added to journeyd's environment; those of a
        service manager around the tests are never passed on."""
        config = config or self.write_config()
        log_name = log_name or "journeyd-%d.log" % len(self.daemons)
        log = open(os.path.join(self.tmp, log_name), "w")
        cmd = [self.bin["journeyd"], "-f", config]
        if os.environ.get("JOURNEYD_VALGRIND"):
            # errors or definite leaks turn the exit status into 97
            cmd = ["valgrind", "--error-exitcode=97", "--leak-check=full",
                   "--errors-for-leak-kinds=definite",
                   "--show-leak-kinds=definite"] + cmd
        environ = {k: v for k, v in os.environ.items() if k not in
                   ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        environ.update(env or {})
        p = subprocess.Popen(cmd, stdout=log, stderr=log, env=environ)
        p.log_path = log.name
        self.daemons.append(p)
        return p

    def http_get(self, path, timeout=10, method="GET"):
        """(status, body) of GET (or method) path on journeyd's HTTP
        endpoint; status None while nothing listens there, or no answer
        came in time."""
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(urllib.request.Request(url, method=method),
                             timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except urllib.error.URLError as e:
            return None, str(e.reason)
        except OSError as e:    # a timeout while reading the answer
            return None, str(e)

    def metrics(self):
        """journeyd's /metrics, parsed (parse_metrics)."""
        status, body = self.http_get("/metrics")
        assert status == 200, (status, body)
        return parse_metrics(body)

    def journeyd_log(self, p):
        with open(p.log_path) as f:
            return f.read()

    @staticmethod
    def rss_kb(p):
        with open("/proc/%d/status" % p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop_journeyd(self, p, timeout=60):
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("journeyd did not stop on SIGTERM:\n" +
                                 self.journeyd_log(p)[-3000:])

    # -- Kafka -----------------------------------------------------------
    def produce(self, topic, lines, headers=(), idempotent=True):
        """lines: iterable of 'key\\tvalue' strings (ktool's input format);
        headers: (name, value) pairs given to every message; not
        idempotent: a producer that asks the cluster for no producer id."""
        data = "".join(l + "\n" for l in lines)
        r = subprocess.run([self.bin["ktool"], "produce", self.brokers, topic]
                           + ([] if idempotent else ["-p"])
                           + ["%s=%s" % h for h in headers],
                           input=data, text=True, capture_output=True,
                           timeout=300)
        if r.returncode != 0:
            raise AssertionError("ktool produce failed: " + r.stderr)

    def produce_events(self, events, topic="touchpoints", idempotent=True):
        """events: dicts, each keyed by its customer_id."""
        self.produce(topic, ("%s\t%s" % (ev["customer_id"], json.dumps(ev))
                             for ev in events), idempotent=idempotent)

    def feed(self, lines, chunk, period):
        """Produces lines in chunks every period seconds, in a thread: a
        steady stream while a test breaks things. Join the thread: that
        raises if producing failed (not a wait for events that never
        came)."""
        def run():
            for i in range(0, len(lines), chunk):
                self.produce("touchpoints", lines[i:i + chunk])
                time.sleep(period)
        t = Feeder(run)
        t.start()
        return t

    def consume(self, topic):
        """Everything the topic holds now, as dicts (see ktool consume)."""
        r = subprocess.run([self.bin["ktool"], "consume", self.brokers, topic],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("ktool consume failed: " + r.stderr)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def committed(self, group="journeyd", topic="touchpoints"):
        """{partition: the offset group has committed} (ktool)."""
        r = subprocess.run([self.bin["ktool"], "committed", self.brokers,
                            group, topic, str(self.topics[topic])],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("ktool committed failed: " + r.stderr)
        return {int(p): int(o) for p, o in
                (l.split() for l in r.stdout.splitlines())}

    def committed_as_applied(self, prefix="journey:", topic="touchpoints"):
        """What journeyd must have committed once it stopped cleanly, as
        committed() gives it: for each partition the offset after its
        watermark in Redis, or -1001 (none) when nothing of it was
        applied."""
        wm = self.redis.hgetall(prefix + "offsets")
        return {p: int(wm.get("%s/%d" % (topic, p), -1002)) + 1
                for p in range(self.topics[topic])}

    def loadgen(self, *args):
        r = subprocess.run([self.bin["loadgen"]] + [str(a) for a in args],
                           capture_output=True, text=True, check=True)
        return r.stdout.splitlines()

    # -- progress --------------------------------------------------------
    def applied_offsets(self, prefix="journey:"):
        """Sum over input partitions of (watermark + 1) in Redis."""
        wm = self.redis.hgetall(prefix + "offsets")
        return sum(int(v) + 1 for v in wm.values())

    def wait_applied(self, count, daemons=(), timeout=120, prefix="journey:"):
        def done():
            for p in daemons:
                if p.poll() is not None:
                    raise AssertionError(
                        "journeyd exited with %d:\n%s" %
                        (p.returncode, self.journeyd_log(p)[-3000:]))
            return self.applied_offsets(prefix) >= count
        wait_for("journeyd to apply %d events" % count, done, timeout)


def build_dir():
    for i, a in enumerate(sys.argv):
        if a == "--build" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return os.environ.get("JOURNEYD_BUILD", "build")
