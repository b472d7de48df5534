"""test_journeyctl.py: journeyctl's output against a known state.

A few customers with known journeys go through the real stack; then every
journeyctl command is run against the same Redis and its output checked:
the customer view (stage, risk and reasons, history), the funnel overall
and for one segment (with the customers of a stage the config no longer
has; a segment is one the config names, customers or not), the at-risk
list (a row it cannot read said on that row), the
journey map table with its opportunities, the live instance with its
partitions; and the clear errors for an unknown customer, for Redis being
down or not answering, and for output that could not be written (exit
status 1); a usage error says what was wrong (exit status 2).
"""
import re
import signal
import subprocess
import sys

import harness

CONFIG = """\
segments = vip
"""
T0 = 1767225600000  # 2026-01-01
DAY = 86400000

JOURNEYS = {
    # customer: [(type, day, extra)]
    "ann": [("ad_click", 0, {"segment": "vip", "channel": "social"}),
            ("product_view", 1, {"channel": "web"}),
            ("purchase", 2, {"channel": "web", "value": 120})],
    "bob": [("blog_read", 0, {"channel": "web"}),
            ("purchase", 3, {"channel": "store", "value": 0.1}),
            ("complaint", 4, {"channel": "call_centre", "value": 0.2}),
            ("complaint", 4, {"channel": "call_centre"}),
            ("complaint", 4, {"channel": "email"})],
    # a name of two-byte characters after one of one byte: the map's
    # column of 30 bytes ends inside a character, which must not be cut
    "cy": [("search_visit", 1, {"channel": "web"}),
           ("x" + "\u00e9" * 20, 1, {"channel": "web"}),
           ("x" + "\u00e9" * 20, 1, {"channel": "web"})],
}


def journeyctl(st, config, *args):
    return subprocess.run([st.bin["journeyctl"], "-f", config] + list(args),
                          capture_output=True, text=True, timeout=30)


def main():
    with harness.Stack(harness.build_dir(), "journeyctl") as st:
        config = st.write_config(CONFIG)
        jd = st.start_journeyd(config)
        events = []
        for cid, steps in JOURNEYS.items():
            for i, (etype, day, extra) in enumerate(steps):
                events.append(dict(customer_id=cid, type=etype,
                                   ts=T0 + day * DAY + i, **extra))
        st.produce_events(sorted(events, key=lambda e: e["ts"]))
        st.wait_applied(len(events), [jd])

        r = journeyctl(st, config, "customer", "bob")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert re.search(r"stage\s+decision since 2026-01-04", out), out
        # the sum as sent, not 0.30000000000000004
        assert re.search(r"events\s+5, value 0\.3, segment", out), out
        assert re.search(r"risk\s+medium \(score 0\.\d+\): 3\.0 pain points; "
                         r"sentiment -0\.80", out), out
        assert re.search(r"touchpoints\s+call_centre 2, email 1, store 1, "
                         r"web 1", out), out
        history = re.findall(r"^    (\S+)  (\w+) +(\S+) +-> (\w+)", out, re.M)
        assert history == [
            ("2026-01-01T00:00:00.000Z", "stage", "(new)", "awareness"),
            ("2026-01-04T00:00:00.001Z", "stage", "awareness", "decision"),
            ("2026-01-05T00:00:00.004Z", "risk", "low", "medium")], out

        r = journeyctl(st, config, "stages")
        counts = dict(re.findall(r"^(\w+)\s+(\d+)\s", r.stdout, re.M))
        assert counts == {"awareness": "1", "consideration": "0",
                          "decision": "2", "retention": "0", "loyalty": "0",
                          "total": "3"}, r.stdout
        r = journeyctl(st, config, "stages", "--segment", "vip")
        counts = dict(re.findall(r"^(\w+)\s+(\d+)\s", r.stdout, re.M))
        assert counts["decision"] == "1" and counts["total"] == "1", r.stdout

        r = journeyctl(st, config, "at-risk", "5")
        rows = [l for l in r.stdout.splitlines()[1:] if l.strip()]
        assert len(rows) == 1 and rows[0].startswith("bob "), r.stdout
        assert "medium" in rows[0] and "pain points" in rows[0], rows

        r = journeyctl(st, config, "map")
        assert r.returncode == 0, r.stderr
        rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[2:7]}
        # stage, in, entered, onward: ann and bob moved on from awareness
        # (2 of 3 entries), ann from consideration (1 of 1)
        assert rows["awareness"][1:4] == ["1", "3", "66.7%"], r.stdout
        assert rows["consideration"][1:4] == ["0", "1", "100.0%"], r.stdout
        assert rows["decision"][1:3] == ["2", "2"], r.stdout
        assert "complaint 3" in r.stdout, r.stdout
        # (text=True: journeyctl's output must be UTF-8 to get here)
        assert " x" + "\u00e9" * 14 + " " in r.stdout, r.stdout
        # nobody moved on from decision: the worst drop-off
        assert re.search(r"^dropoff: decision \(0\.0% move on\)", r.stdout,
                         re.M), r.stdout
        # a day in awareness, at most 2^11 minutes by the buckets
        assert re.search(r"^slowest: awareness \(median under 1d10h\)",
                         r.stdout, re.M), r.stdout
        assert re.search(r"^unhappiest: decision", r.stdout, re.M), r.stdout
        m = st.redis.hgetall("journey:map:vip")
        assert m["awareness>consideration"] == "1", m

        r = journeyctl(st, config, "instances")
        assert re.search(r"^\S+:%d\s+0\.1\.0\s.*touchpoints/0" % jd.pid,
                         r.stdout, re.M), r.stdout

        r = journeyctl(st, config, "customer", "nobody")
        assert r.returncode == 1 and "no customer 'nobody'" in r.stderr, r
        r = journeyctl(st, config, "stages", "--segment", "nowhere")
        assert r.returncode == 1 and "nowhere" in r.stderr, r
        # the segments are the config's, as on the map page: one named
        # with no customer yet is empty (it was "no journey map"), one no
        # longer named is none, though its hash remains (it was shown)
        more = st.write_config("segments = vip, newbies\n", name="more.conf")
        for cmd in ("stages", "map"):
            r = journeyctl(st, more, cmd, "--segment", "newbies")
            assert r.returncode == 0, (cmd, r)
        assert re.search(r"^total\s+0\s", journeyctl(
            st, more, "stages", "--segment", "newbies").stdout, re.M)
        fewer = st.write_config("", name="fewer.conf")
        for cmd in ("stages", "map"):
            r = journeyctl(st, fewer, cmd, "--segment", "vip")
            assert r.returncode == 1 and "no segment 'vip' in the config" \
                in r.stderr, (cmd, r)
        # a usage error says what was wrong, then the usage
        for usage, why in ((["bogus"], "no command 'bogus'"),
                           (["at-risk", "0"], "at-risk: N is a number"),
                           (["stages", "--segment"],
                            "stages: --segment takes one segment"),
                           (["map", "--seg", "vip"],
                            "map: '--seg' is not --segment")):
            r = journeyctl(st, config, *usage)
            assert r.returncode == 2 and r.stderr.startswith(
                "journeyctl: " + why) and "usage" in r.stderr, (usage, r)

        # a key of another type (a hash, as builds before the packed
        # form wrote): said of that customer; the others still listed
        st.redis("HSET", "journey:{old}", "stage", "awareness")
        st.redis("ZADD", "journey:at_risk", "0.9", "old")
        r = journeyctl(st, config, "customer", "old")
        assert r.returncode == 1 and "customer 'old': stored state " \
            "unreadable (WRONGTYPE" in r.stderr, r
        r = journeyctl(st, config, "at-risk", "5")
        rows = [l.split() for l in r.stdout.splitlines()[1:] if l.strip()]
        assert r.returncode == 0 and [row[:2] for row in rows] == [
            ["old", "?"], ["bob", "medium"]], r.stdout

        # an id too long to be a customer's (another program's): said
        # on its row, the others still listed
        st.redis("ZADD", "journey:at_risk", "0.95", "y" * 600)
        r = journeyctl(st, config, "at-risk", "5")
        rows = [l.split() for l in r.stdout.splitlines()[1:] if l.strip()]
        assert r.returncode == 0 and [row[0] for row in rows] == [
            "y" * 600, "old", "bob"], r
        assert "(too long for a customer id)" in r.stdout, r.stdout
        st.redis("ZREM", "journey:at_risk", "y" * 600)
        # a customer deleted by hand, its entry left: said on its row
        st.redis("ZADD", "journey:at_risk", "0.95", "ghost")
        r = journeyctl(st, config, "at-risk", "5")
        assert re.search(r"^ghost .*\(no such customer\)$", r.stdout,
                         re.M), r.stdout
        st.redis("ZREM", "journey:at_risk", "ghost")

        # with decision renamed, its customers are still in the funnel,
        # after the stages of the config, and in its total
        renamed = st.write_config(CONFIG + "stage.awareness = ad_click, "
                                  "blog_read, search_visit\n"
                                  "stage.consideration = product_view\n"
                                  "stage.buying = purchase\n")
        for args, want in ((["stages"], {"awareness": "1",
                                          "consideration": "0",
                                          "buying": "0", "decision": "2",
                                          "total": "3"}),
                           (["stages", "--segment", "vip"],
                            {"awareness": "0", "consideration": "0",
                             "buying": "0", "decision": "1",
                             "total": "1"})):
            r = journeyctl(st, renamed, *args)
            counts = dict(re.findall(r"^(\w+)\s+(\d+)\s", r.stdout, re.M))
            assert r.returncode == 0 and counts == want, (args, r)
            assert re.search(r"^decision .*\(not in the config\)$",
                             r.stdout, re.M), r.stdout

        # output it could not write all of is an error
        with open("/dev/full", "w") as full:
            r = subprocess.run([st.bin["journeyctl"], "-f", config,
                                "stages"], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=30)
        assert r.returncode == 1 and "cannot write the output" in \
            r.stderr, r

        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        r = journeyctl(st, config, "instances")
        assert str(jd.pid) not in r.stdout, "a stopped instance is listed"

        # many customers listed: the name table is read once, not per
        # customer (at-risk 10000 read it 10000 times); journeyd is
        # stopped, its own reads of the table not counted
        for cid in ("bob2", "bob3"):
            assert st.redis("COPY", "journey:{bob}", "journey:{%s}" % cid) \
                == 1
            st.redis("ZADD", "journey:at_risk", "0.5", cid)
        st.redis("CONFIG", "RESETSTAT")
        r = journeyctl(st, config, "at-risk", "5")
        rows = [l.split() for l in r.stdout.splitlines()[1:] if l.strip()]
        assert sorted(row[0] for row in rows) == [
            "bob", "bob2", "bob3", "old"] and all(
                row[1] == "medium" for row in rows if row[0] != "old"), \
            r.stdout
        lranges = re.search(r"cmdstat_lrange:calls=(\d+)",
                            st.redis("INFO", "commandstats"))
        assert lranges and lranges.group(1) == "1", lranges

        # in database 0, journeyctl needs no SELECT (as journeyd does not)
        st.redis("ACL", "SETUSER", "default", "-select")
        r = journeyctl(st, config, "stages")
        st.redis("ACL", "SETUSER", "default", "+select")
        assert r.returncode == 0 and "awareness" in r.stdout, r

        # a Redis that does not answer is said to, not "Resource
        # temporarily unavailable"
        st.signal_redis(signal.SIGSTOP)
        try:
            r = journeyctl(st, config, "stages")
        finally:
            st.signal_redis(signal.SIGCONT)
        assert r.returncode == 1 and re.match(
            r"journeyctl: Redis at 127\.0\.0\.1:\d+: no reply within \d+ s",
            r.stderr), r
        st.kill_redis()
        r = journeyctl(st, config, "stages")
        assert r.returncode == 1, r
        assert re.match(r"journeyctl: cannot reach Redis at 127\.0\.0\.1:\d+: "
                        r"Connection refused", r.stderr), r.stderr
        # a usage error is one whether Redis is there or not
        for usage in (["bogus"], ["at-risk", "0"], ["customer"]):
            r = journeyctl(st, config, *usage)
            assert r.returncode == 2 and "usage" in r.stderr, (usage, r)
        print("journeyctl customer, stages (all and --segment), at-risk, "
              "map, instances checked against a known state; unknown "
              "customer, a key of another type and Redis down give exit 1 "
              "with the reason, and at-risk lists the others; usage "
              "errors exit 2, Redis up or down")


if __name__ == "__main__":
    sys.exit(main())
