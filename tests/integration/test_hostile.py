"""test_hostile.py: journeyd against the hostile corpus (tests/hostile/).

Phase 1 runs journeyd with event.max_bytes = 4096 on every line of
tests/hostile/events.txt plus generated size-boundary events; phase 2
restarts it with event.max_bytes = 262144 and replays the corpus lines
that phase 1 refused for size (5000-level nesting, 10 KB ids) so the
parser sees them too. An oracle written from the README's "Event format"
decides for each line: refused, or accepted with which customer id. Then:
- journeyd stays up through both phases and exits 0 on SIGTERM;
- each refused line is on the dead-letter topic exactly once, unchanged,
  with a one-line `reason` and a `source` naming
  its offset, and nothing else is; every accepted line is applied (per
  customer `events` count); good events' hashes equal fold.py's Fold;
- Redis holds no key but journey:stages, journey:offsets, the journey map
  of segment "other" (none is configured, whatever segments events
  claim), the deadline index of each input partition, the alert counters,
  the at-risk list, the instance heartbeat, the name table, and
  journey:{ID}
  and journey:{ID}:changes of the expected ids: no id or segment escaped
  its key or hash tag;
- /metrics counts every refused line of phase 1 as dead-lettered, in at
  most 32 reason classes (the corpus has more: the rest are "other").
"""
import collections
import socket
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import harness
from fold import Fold

REASON_CLASSES_MAX = 32  # dead-letter reason labels on /metrics (README)

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "hostile", "events.txt")
SMALL, BIG = 4096, 262144
TS_MAX = 253402300799999
MAX_FUTURE_MS = 86400000  # event.max_future_ms, default
PREFIX = "journey:"
sys.setrecursionlimit(100000)  # the oracle parses 5000-level nesting


# -- ktool's line format ------------------------------------------------------
def unescape(b):
    """ktool's decoding of \\n \\t \\\\ \\0; other backslash pairs stay."""
    out, i, esc = bytearray(), 0, {110: 10, 116: 9, 92: 92, 48: 0}
    while i < len(b):
        if b[i] == 92 and i + 1 < len(b) and b[i + 1] in esc:
            out.append(esc[b[i + 1]])
            i += 2
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def split_line(line):
    """(key bytes or b'', value bytes) as ktool produces the line."""
    tab = line.find(b"\t")
    if tab < 0:
        return b"", unescape(line)
    return unescape(line[:tab]), unescape(line[tab + 1:])


def shown(b):
    """What ktool consume prints for bytes: each invalid byte -> U+FFFD."""
    out, i = [], 0
    while i < len(b):
        c, k = b[i], 0
        if c < 0x80:
            k = 1
        elif 0xc2 <= c <= 0xdf:
            k = 2
        elif c & 0xf0 == 0xe0:
            k = 3
        elif 0xf0 <= c <= 0xf4:
            k = 4
        try:
            out.append(b[i:i + k].decode("utf-8") if k else "\ufffd")
            i += k or 1
        except UnicodeDecodeError:  # truncated, overlong or surrogate
            out.append("\ufffd")
            i += 1
    return "".join(out)


# -- the oracle: README "Event format" ----------------------------------------
class Refused(Exception):
    pass


def load_json(value):
    """The JSON value, or Refused for what a strict parser must reject."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("invalid UTF-8")

    def pairs(kv):
        d = {}
        for k, v in kv:
            if k in d:
                raise Refused("duplicate key")
            d[k] = v
        return d

    def integer(t):
        n = int(t)
        if not -2 ** 63 <= n < 2 ** 63:
            raise Refused("integer out of range")
        return n

    def real(t):
        x = float(t)
        if math.isinf(x):
            raise Refused("real overflow")
        return x

    def const(t):
        raise Refused("not JSON: " + t)

    try:
        root = json.loads(text, object_pairs_hook=pairs, parse_int=integer,
                          parse_float=real, parse_constant=const)
    except (ValueError, RecursionError):
        raise Refused("invalid JSON")
    stack = [(root, 1)]  # NUL, lone surrogates, depth (jansson: 2048)
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)) and depth > 2048:
            raise Refused("too deep")
        items = v.items() if isinstance(v, dict) else \
            enumerate(v) if isinstance(v, list) else [(0, v)]
        for k, x in items:
            for s in (k, x):
                if isinstance(s, str) and ("\0" in s or re.search(
                        "[\ud800-\udfff]", s)):
                    raise Refused("NUL or lone surrogate")
            if isinstance(x, (dict, list)):
                stack.append((x, depth + 1))
    return root


def text(what, b, limit, braces=True):
    if not 1 <= len(b) <= limit:
        raise Refused("%s length" % what)
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("%s not UTF-8" % what)
    text = b.decode("utf-8")
    if any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in text) or \
            (not braces and (b"{" in b or b"}" in b)):
        raise Refused("%s character" % what)
    return text


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):"
                 r"([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
                 r"(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))?)?")


def iso_ms(s):
    m = ISO.fullmatch(s)
    if not m:
        raise Refused("ts not ISO-8601")
    y, mo, d, h, mi, sec = (int(x or 0) for x in m.groups()[:6])
    frac, sign, tzh, tzm = m.group(7), m.group(8), m.group(9), m.group(10)
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    mdays = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= mo <= 12 and 1 <= d <= mdays[mo - 1] and h <= 23 and
            mi <= 59 and sec <= 60 and int(tzh or 0) <= 23 and
            int(tzm or 0) <= 59):
        raise Refused("ts field out of range")
    v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
    if sign:
        v -= (1 if sign == "+" else -1) * (int(tzh) * 3600 + int(tzm) * 60)
    return v * 1000 + (int((frac + "00")[:3]) if frac else 0)


def judge(key, value, max_bytes):
    """The customer id the event is applied to; Refused if it is refused."""
    if len(value) > max_bytes:
        raise Refused("size")
    if not value:
        raise Refused("empty")
    ev = load_json(value)
    if not isinstance(ev, dict):
        raise Refused("not an object")
    cid = ev.get("customer_id")
    if cid is None:
        if not key:
            raise Refused("no customer id")
        cid = key
    elif isinstance(cid, str):
        cid = cid.encode("utf-8")
    elif isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid).encode()
    else:
        raise Refused("customer_id type")
    cid = text("customer_id", cid, 256, braces=False)
    for name, limit in (("type", 64), ("channel", 64), ("segment", 64),
                        ("event_id", 128)):
        v = ev.get(name)
        if v is None and name != "type":
            continue
        if not isinstance(v, str):
            raise Refused(name + " type")
        text(name, v.encode("utf-8"), limit)
    ts = ev.get("ts")
    if isinstance(ts, str):
        ms = iso_ms(ts)
    elif is_num(ts) and -1e15 <= ts <= 1e15:
        ms = int(ts)
    elif ts is None:
        ms = 0  # the Kafka timestamp: ktool sets it
    else:
        raise Refused("ts type or range")
    if not 0 <= ms <= TS_MAX:
        raise Refused("ts out of years 1970-9999")
    if ms > time.time() * 1000 + MAX_FUTURE_MS:
        raise Refused("ts too far in the future")
    for name, lo, hi in (("sentiment", -1, 1), ("value", -1e15, 1e15)):
        v = ev.get(name)
        if v is not None and not (is_num(v) and lo <= v <= hi):
            raise Refused(name)
    if ev.get("properties") is not None and \
            not isinstance(ev["properties"], dict):
        raise Refused("properties type")
    return cid


# -- the run ---------------------------------------------------------------------
def padded(cid, size):
    """A valid event of exactly size bytes."""
    head = '{"customer_id":"%s","type":"x","properties":{"pad":"' % cid
    return ("%s\t%s%s\"}}" % (cid, head, "p" * (size - len(head) - 3))).encode()


def produce(st, lines):
    r = subprocess.run([st.bin["ktool"], "produce", st.brokers, "touchpoints"],
                       input=b"".join(l + b"\n" for l in lines),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, "ktool produce failed: %r" % r.stderr


def map_offsets(st, lines, start, where):
    """Maps the input topic's new messages to lines[start:] by content."""
    want = collections.defaultdict(collections.deque)
    for i in range(start, len(lines)):
        k, v = lines[i]["key"], lines[i]["value"]
        want[(shown(k), shown(v))].append(i)
    got = sorted((m for m in st.consume("touchpoints")
                  if (m["partition"], m["offset"]) not in where),
                 key=lambda m: (m["partition"], m["offset"]))
    assert len(got) == len(lines) - start, "topic holds %d new messages, " \
        "produced %d" % (len(got), len(lines) - start)
    for m in got:
        q = want[(m["key"] or "", m["value"] or "")]
        assert q, "message %r matches no line" % m
        where[(m["partition"], m["offset"])] = q.popleft()


def run_phase(st, jd, lines, raw, max_bytes, where):
    start = len(lines)
    for r in raw:
        key, value = split_line(r)
        try:
            lines.append(dict(key=key, value=value, good=key.startswith(
                b"good-"), cid=judge(key, value, max_bytes), raw=r))
        except Refused as e:
            lines.append(dict(key=key, value=value, good=False, cid=None,
                              why=str(e), raw=r))
    assert all(l["cid"] for l in lines if l["good"]), "a good line refused"
    produce(st, raw)
    st.wait_applied(len(lines), [jd], timeout=180)
    assert jd.poll() is None, "journeyd died:\n" + st.journeyd_log(jd)[-3000:]
    map_offsets(st, lines, start, where)


def check_reason_metrics(st, refused):
    """Dead letters per reason class add up, in a bounded label set."""
    # counted once their batch is done: after Redis holds it
    harness.wait_for("nothing in flight", lambda: st.metrics()[
        "journeyd_inflight_events"][frozenset()] == 0, 60)
    m = st.metrics()
    total = m["journeyd_events_total"][
        frozenset([("outcome", "dead_lettered")])]
    classes = m["journeyd_dead_letters_total"]
    assert total == refused == sum(classes.values()), \
        (total, refused, sum(classes.values()))
    # the corpus has more reasons than labels: the rest counted as other
    assert len(classes) == REASON_CLASSES_MAX, len(classes)
    assert frozenset([("reason", "other")]) in classes, classes


def main():
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: skipped")
        return harness.SKIP
    with open(CORPUS, "rb") as f:
        data = f.read()
    corpus = [l for l in data.split(b"\n")[:-1] if not l.startswith(b"#")]
    assert len(corpus) > 300, "corpus too small: %d lines" % len(corpus)
    phase1 = corpus + [padded("h-size-4096", SMALL),
                       padded("h-size-4097", SMALL + 1),
                       padded("h-size-64k", 65536),
                       padded("h-size-300k", 300000),
                       b"h-size-bad\t{" + b"[" * SMALL]
    phase2 = [l for l in corpus if len(split_line(l)[1]) > SMALL] + \
        [padded("h-big-4097", SMALL + 1), padded("h-big-200k", 200000),
         padded("h-big-300k", 300000)]
    lines, where = [], {}
    with harness.Stack(harness.build_dir(), "hostile") as st:
        jd = st.start_journeyd(st.write_config(
            "event.max_bytes = %d\n" % SMALL, http=True))
        run_phase(st, jd, lines, phase1, SMALL, where)
        check_reason_metrics(st, sum(1 for l in lines if l["cid"] is None))
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, st.journeyd_log(jd))
        jd = st.start_journeyd(st.write_config(
            "event.max_bytes = %d\n" % BIG, "journeyd-big.conf"))
        run_phase(st, jd, lines, phase2, BIG, where)

        # dead letters: exactly the refused lines, unchanged, with headers
        dead = st.consume("journey.dead-letter")
        seen, problems = {}, []
        reasons = collections.Counter()
        for m in dead:
            h = m["headers"]
            reason, src = h.get("reason") or "", h.get("source") or ""
            mo = re.fullmatch(r"touchpoints/(\d+)/(\d+)", src)
            if not mo or (int(mo[1]), int(mo[2])) not in where:
                problems.append("dead letter with bad source %r" % src)
                continue
            i = where[(int(mo[1]), int(mo[2]))]
            l = lines[i]
            if i in seen:
                problems.append("line %d dead-lettered twice" % i)
            seen[i] = reason
            if not reason:
                problems.append("line %d: empty reason" % i)
            elif re.search("[\x00-\x1f\x7f]", reason):
                problems.append(
                    "line %d: reason %r is not one clean line" % (i, reason))
            if (m["key"] or "", m["value"] or "") != (shown(l["key"]),
                                                      shown(l["value"])):
                problems.append("line %d: dead letter differs from input" % i)
            if l["cid"] is not None:
                problems.append("accepted line %r dead-lettered: %s" %
                                (l["raw"][:120], reason))
            elif l["why"] == "size" and "event.max_bytes" not in reason:
                problems.append("line %d: size refusal says %r" % (i, reason))
            reasons[re.split(r" at byte|:| is | must | contains ",
                             reason)[0]] += 1
        refused = [i for i, l in enumerate(lines) if l["cid"] is None]
        for i in refused:
            if i not in seen:
                problems.append("refused line not dead-lettered (%s): %r" %
                                (lines[i]["why"], lines[i]["raw"][:120]))
        assert not problems, "\n".join(problems[:30])
        assert len(dead) == len(refused), "%d dead letters, %d refused" % (
            len(dead), len(refused))

        # Redis: every accepted event applied, no key outside the documented
        events = collections.Counter(l["cid"] for l in lines if l["cid"])
        fold = Fold()
        for l in lines:
            if l["good"]:
                fold.add(l["raw"].decode())
        for cid, n in events.items():
            got = st.redis.customer(cid, PREFIX)
            if got.get("events") != str(n):
                problems.append("customer %r: events %r, expected %d" %
                                (cid, got.get("events"), n))
        for cid in fold.customers:
            got = st.redis.customer(cid, PREFIX)
            for k, v in fold.expected_hash(cid).items():
                if got.get(k) != v:
                    problems.append("%s.%s: redis %r, fold %r" %
                                    (cid, k, got.get(k), v))
        allowed = {PREFIX + "stages", PREFIX + "offsets", PREFIX + "clocks",
                   PREFIX + "map:other", PREFIX + "alerts",
                   PREFIX + "at_risk", PREFIX + "instances",
                   PREFIX + "names", PREFIX + "due_model"} | \
            {PREFIX + "instance:%s:%d" % (socket.gethostname(), p.pid)
             for p in st.daemons} | \
            {"%sdue:touchpoints/%d" % (PREFIX, p) for p in
             range(st.topics["touchpoints"])} | \
            {"%s{%s}" % (PREFIX, c) for c in events} | \
            {"%s{%s}:changes" % (PREFIX, c) for c in events}
        # each writer connection's chain (run_id's start, client id)
        chain = re.compile(re.escape(PREFIX) + r"writer:[0-9a-f]{16}:\d+\Z")
        stray = [k for k in st.redis.scan_keys("*") if k not in allowed and
                 not chain.match(k)]
        problems += ["key outside the documented ones: %r" % k[:100]
                     for k in stray]
        staged = sum(int(v) for v in st.redis.hgetall(PREFIX + "stages")
                     .values())
        if staged != len(events):
            problems.append("journey:stages counts %d customers, expected %d"
                            % (staged, len(events)))
        assert not problems, "\n".join(problems[:30])

        assert jd.poll() is None, "journeyd died at the end"
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (rc, st.journeyd_log(jd))
        hostile = [l for l in lines if not l["good"]]
        good = sum(1 for l in lines if l["good"])
        print("hostile inputs tried %d, dead-lettered %d, accepted %d, good "
              "events applied %d, crashes 0" % (
                  len(hostile), len(dead),
                  sum(1 for l in hostile if l["cid"]), good))
        print("reasons: %s" % dict(reasons.most_common()))
        if os.environ.get("HOSTILE_VERBOSE"):  # oracle vs journeyd, per line
            for i, l in enumerate(lines):
                if not l["good"]:
                    print("%-8s %-28s %r -> %r" % (
                        "refused" if l["cid"] is None else "accepted",
                        l.get("why", l["cid"])[:28], l["raw"][:70],
                        seen.get(i, "")))
        print("customers %d, Redis keys all documented (no id escaped its "
              "key)" % len(events))


if __name__ == "__main__":
    sys.exit(main())
