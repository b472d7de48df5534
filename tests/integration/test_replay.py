"""test_replay.py: loadgen -R replays the real data sets as the tests read
them, and journeyd takes a replay with copies as that many shops.

A data set that is not what loadgen reads is refused with file:line and
what is wrong, and nothing is printed. Then, with ../shared/data (skipped
when absent): loadgen's events for the UCI invoices and the Olist funnel
equal, event for event, what test_uci.py and test_olist.py make of the
same files (customer, type, time, segment, channel, value; each copy's
customer and event_id suffixed ~K); -t moves a replay to start then with
its gaps kept. Last, the UCI year with 2 copies is produced to Kafka by
loadgen -P and applied by journeyd on the event clock: every event once,
twice as many customers as the file has, each stage holding exactly
twice what test_uci.py computes from the file, and twice its churned
customers once the deadlines up to the stream clock are settled. That
run has max_inflight = 400, so each scan of the deadline index brings
at most a quarter of it (journeyd's debug log says how many), and
bringing fewer at a time loses none; an event ten years on brings every
customer still indexed due at once, and a scan brings just that many.
"""
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

import harness
import test_olist
import test_uci

COPIES = 2
MAX_INFLIGHT = 400
SCAN_MOST = MAX_INFLIGHT // 4	# one input partition (test_uci.TOPICS)


def loadgen(build, *args):
    return subprocess.run(
        [os.path.join(build, "tests", "loadgen")] + [str(a) for a in args],
        capture_output=True, text=True, timeout=300)


def replayed(build, *args):
    r = loadgen(build, "-R", *args)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        key, value = line.split("\t", 1)
        ev = json.loads(value)
        assert key == ev["customer_id"], line
        out.append(ev)
    return out


def check_refused(build, tmp):
    """Files that are not a data set loadgen knows: file:line: what."""
    header = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
              "UnitPrice,CustomerID,Country\n")
    cases = [
        ("columns.csv", "a,b,c\n", "columns.csv:1: neither UCI"),
        ("quantity.csv.gz", header +
         '536381,82567,"AIRLINE LOUNGE,METAL SIGN",2,2010-12-01 09:41:00,'
         '2.1,15311.0,United Kingdom\n'
         "536382,1,x,two,2010-12-01 09:41:00,2.1,15311.0,United Kingdom\n",
         "quantity.csv.gz:3: Quantity is not a number"),
        ("date.csv", header +
         "536382,1,x,2,2010-12-01,2.1,15311.0,United Kingdom\n",
         "date.csv:2: InvoiceDate is not YYYY-MM-DD HH:MM:SS"),
        ("quote.csv", header +
         '536382,1,"x,2,2010-12-01 09:41:00,2.1,15311.0,United Kingdom\n',
         "quote.csv:2: a quote that is not closed"),
        ("short.csv", header + "536382,1,x,2\n",
         "short.csv:2: not 8 fields"),
        ("empty.csv", "", "empty.csv: no events"),
    ]
    for name, text, said in cases:
        path = os.path.join(tmp, name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "wt") as f:
            f.write(text)
        r = loadgen(build, "-R", path)
        assert r.returncode == 1 and r.stdout == "", (name, r)
        assert said in r.stderr, (name, r.stderr)
    # a gzip'd file cut short: zlib tells it from one that ends
    whole = gzip.compress(cases[1][1].encode())
    path = os.path.join(tmp, "cut.csv.gz")
    with open(path, "wb") as f:
        f.write(whole[:-12])
    r = loadgen(build, "-R", path)
    assert r.returncode == 1 and r.stdout == "", r
    assert "cut.csv.gz:3: unexpected end of file" in r.stderr, r.stderr
    # the synthetic stream's mix has no say in a replay, nor does -L,
    # which knows its events by the ids it makes
    for extra in (["-c", 5], ["-P", "127.0.0.1:1", "-L", "alerts", "t"]):
        r = loadgen(build, "-R", os.path.join(tmp, "date.csv"), *extra)
        assert r.returncode == 2 and "usage" in r.stderr, (extra, r)


def check_uci(build, path):
    want = test_uci.invoices(path)
    got = replayed(build, path, "-x", COPIES)
    assert len(got) == COPIES * len(want), (len(got), len(want))
    for i, ev in enumerate(got):
        w, k = want[i // COPIES], i % COPIES
        suffix = "~%d" % k if k else ""
        assert (ev["customer_id"], ev["event_id"]) == \
            (w["customer_id"] + suffix, w["event_id"] + suffix), (ev, w)
        assert (ev["type"], ev["ts"], ev.get("segment", "")) == \
            (w["type"], w["ts"], w["segment"]), (ev, w)
        assert abs(ev["value"] - w["value"]) < 0.005, (ev, w)
    return want


def check_olist(build, path):
    want = test_olist.funnel(path)
    got = replayed(build, path)
    assert len(got) == len(want), (len(got), len(want))
    for ev, w in zip(got, want):
        assert ev.pop("event_id") == "%s:%s" % (w["customer_id"],
                                                 w["type"]), ev
        assert ev == w, (ev, w)
    # -t: the same stream, starting then
    start = 1700000000000
    moved = replayed(build, path, "-t", start, "-n", 500)
    assert len(moved) == 500
    assert [ev["ts"] - start for ev in moved] == \
        [w["ts"] - want[0]["ts"] for w in want[:500]]


def check_journeyd(build, path, invoices):
    """The UCI year and a copy of it, produced by loadgen -P, applied by
    journeyd: two shops with the file's habits."""
    stages, _, churned, clock = test_uci.expected(invoices)
    customers = len({ev["customer_id"] for ev in invoices})
    with harness.Stack(build, "replay", topics=test_uci.TOPICS) as st:
        jd = st.start_journeyd(st.write_config(
            test_uci.CONFIG + "max_inflight = %d\nlog_level = debug\n" %
            MAX_INFLIGHT))
        r = loadgen(build, "-P", st.brokers, "-R", path, "-x", COPIES,
                    "touchpoints")
        assert r.returncode == 0, r.stderr
        assert "0 failed" in r.stderr, r.stderr
        st.wait_applied(COPIES * len(invoices), [jd], timeout=600)
        got = {k: int(v) for k, v in
               st.redis.hgetall("journey:stages").items() if int(v)}
        assert got == {k: COPIES * v for k, v in stages.items()}, \
            (got, stages)
        assert sum(got.values()) == COPIES * customers
        harness.wait_for("deadlines up to the stream clock to be settled",
                         lambda: st.redis("ZCOUNT", "journey:due:touchpoints/0",
                                          "-inf", clock) == 0, 120)
        gauges = sum(int(v) for key in st.redis.scan_keys("journey:map:*")
                     for f, v in st.redis.hgetall(key).items()
                     if f.endswith(":churned"))
        assert gauges == COPIES * len(churned), (gauges, len(churned))
        def scans():
            return [int(n) for n in re.findall(
                r"deadlines: (\d+) customers due", st.journeyd_log(jd))]
        assert scans() and max(scans()) <= SCAN_MOST, \
            (SCAN_MOST, sorted(scans())[-5:])
        # the copy of a customer is a customer of its own, with the
        # original's journey
        first = invoices[0]["customer_id"]
        a, b = st.redis.customer(first), st.redis.customer(first + "~1")
        assert a["stage"] == b["stage"] and a["events"] == b["events"], \
            (a, b)
        # an event ten years on: every customer still in the index is due
        # at once, more than a scan brings
        indexed = st.redis("ZCARD", "journey:due:touchpoints/0")
        assert indexed > SCAN_MOST, indexed
        st.produce_events([{"customer_id": "later", "type": "purchase",
                            "ts": clock + 10 * 365 * 86400000}])
        harness.wait_for("a scan of as many as it may bring", lambda:
                         SCAN_MOST in scans(), 120)
        assert max(scans()) == SCAN_MOST, sorted(scans())[-5:]
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
    return got


def main():
    build = harness.build_dir()
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        check_refused(build, tmp)
    uci = harness.shared_data(test_uci.DATA)
    olist = harness.shared_data(test_olist.DATA)
    if uci is None or olist is None:
        return harness.SKIP
    invoices = check_uci(build, uci)
    check_olist(build, olist)
    stages = check_journeyd(build, uci, invoices)
    print("loadgen -R: the UCI invoices (x%d) and the Olist funnel equal "
          "the tests' reading of the files; bad files refused with "
          "file:line; journeyd applied the UCI year x%d: stages %s, "
          "deadline scans of at most %d customers" %
          (COPIES, COPIES, stages, SCAN_MOST))
    return 0


if __name__ == "__main__":
    sys.exit(main())
