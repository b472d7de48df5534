"""test_crash.py: kill -9 journeyd at random moments, many times, under a
steady stream; nothing is lost and nothing is applied twice.

A feeder produces touchpoints at a steady rate while journeyd is killed
with SIGKILL at random points of its work and restarted, at least 20
times (every other time once it has begun applying events, so that some
kills land mid-write however slowly it starts); in every fifth, Redis is
killed first and started again on its append-only file (its last second
lost), and journeyd goes on until its own kill. After a last instance
drains the stream, Redis must equal the fold of every event exactly (no
double counts), every expected stage change must be on the alert topic at
least once, and repeats of one stage change must share one alert_id.

The churn settings are short (a cadence of 3 days, churned after 10), so
the stream's silences bring thousands of churn alerts, by the stream's
clock. The same stream is first applied once without a fault, by a
journeyd of its own: the crashes must give the same churn alerts, each
repeat alike (nothing lost, nothing that the stream without faults does
not give). But for the customers with an event later than the clock's
lateness (49 hours, above the 48 the late events come by; a few tied
events come weeks after their time): whether such an event comes before
or after a timer settles a deadline it moves depends on when the timer
ran, so their alerts may differ (README, "Clock").
"""
import collections
import json
import random
import sys
import time

import harness
from fold import Fold, check_outcome, parse_line, parse_ts

KILLS = int(__import__("os").environ.get("CRASH_KILLS", 22))
CUSTOMERS, EVENTS = 2500, 48000
CHUNK, PERIOD = 200, 0.5  # about 400 events/s: spans all the kills
PARTITIONS = 8
LATENESS_H = 49   # above the 48 hours loadgen's late events come by
LATENESS_MS = LATENESS_H * 3600 * 1000
CONFIG = """\
batch_max = 200
churn.cadence = 3d
churn.after = 10d
clock.lateness = %dh
""" % LATENESS_H


def beyond_lateness(lines):
    """Customers with an event older than the latest before it (of any
    partition: at least its own's) by more than the clock's lateness."""
    out, latest = set(), None
    for line in lines:
        cid, ev = parse_line(line)
        if cid is None or "ts" not in ev:
            continue
        ts = parse_ts(ev["ts"])
        if latest is not None and ts < latest - LATENESS_MS:
            out.add(cid)
        latest = ts if latest is None else max(latest, ts)
    return out


def settled(st):
    """Every partition has a stored clock (each gets events), and nothing
    due by it is left unsettled."""
    clocks = st.redis.hgetall("journey:clocks")
    for p in range(PARTITIONS):
        source = "touchpoints/%d" % p
        if source not in clocks or int(st.redis(
                "ZCOUNT", "journey:due:" + source, "-inf",
                int(clocks[source]) - LATENESS_MS - 1)) > 0:
            return False
    return True


def churn_alerts(st, excluded):
    """alert_id -> the distinct alerts of that id on the churn topic, but
    for the customers excluded."""
    out = {}
    for m in st.consume("journey.churn-risk"):
        a = json.loads(m["value"])
        if a["customer_id"] not in excluded:
            out.setdefault(a["alert_id"], set()).add(m["value"])
    return out


def reference(lines, excluded):
    """The churn alerts of the stream applied once, with no fault."""
    topics = dict(harness.Stack.TOPICS, touchpoints=PARTITIONS)
    with harness.Stack(harness.build_dir(), "crash-reference", topics) as st:
        st.produce("touchpoints", lines)
        jd = st.start_journeyd(st.write_config(CONFIG, session_ms=3000))
        st.wait_applied(len(lines), [jd], timeout=300)
        harness.wait_for("deadlines settled", lambda: settled(st), 60)
        assert st.stop_journeyd(jd) == 0
        return churn_alerts(st, excluded)


def main():
    topics = dict(harness.Stack.TOPICS, touchpoints=PARTITIONS)
    with harness.Stack(harness.build_dir(), "crash", topics) as st:
        # some events sent twice, late, tied or without a channel
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 23, "-d", 5)
        fold = Fold(lines)
        excluded = beyond_lateness(lines)
        expected_churn = reference(lines, excluded)
        config = st.write_config(CONFIG, session_ms=3000)
        rng = random.Random(1)

        feeder = st.feed(lines, CHUNK, PERIOD)

        def start():
            jd = st.start_journeyd(config)
            harness.wait_for("partitions to be assigned",
                             lambda: "assigned" in st.journeyd_log(jd), 60)
            return jd

        kills = busy = redis_kills = 0
        for k in range(KILLS):
            jd = start()
            if k % 5 == 4:
                # Redis too, now and then: its last second of writes lost
                # (appendfsync everysec), journeyd reconnects and rewinds
                # to what it kept, its clocks with it
                time.sleep(rng.uniform(0.2, 1.0))
                st.kill_redis()
                time.sleep(rng.uniform(0.1, 1.0))
                st.start_redis()
                redis_kills += 1
            before = st.applied_offsets()
            if k % 2:
                # every other kill once it is applying (a slow start, as
                # under ASan with other tests beside it, could otherwise
                # outlast every random moment), a little after
                end = time.monotonic() + 30
                while (st.applied_offsets() == before and
                       time.monotonic() < end):
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.3))
            else:
                time.sleep(rng.uniform(0.05, 1.2))
            assert jd.poll() is None, "journeyd died by itself:\n" + \
                st.journeyd_log(jd)[-2000:]
            jd.kill()
            jd.wait()
            kills += 1
            busy += st.applied_offsets() > before
        at_last_kill = st.applied_offsets()
        feeder.join()
        # kills of an idle journeyd would prove nothing about a crash mid-write
        assert busy > 0, "no kill landed while journeyd was applying events"

        jd = start()
        st.wait_applied(len(lines), [jd], timeout=300)
        harness.wait_for("deadlines settled", lambda: settled(st), 60)
        rc = st.stop_journeyd(jd)
        assert rc == 0, "journeyd exited %d:\n%s" % (
            rc, st.journeyd_log(jd)[-3000:])

        alerts = check_outcome(st, fold, exactly_once=False)
        want = set(fold.transitions)
        churn = churn_alerts(st, excluded)
        kinds = collections.Counter(json.loads(next(iter(v)))["type"]
                                    for v in churn.values())
        assert min(kinds[k] for k in ("churn_risk", "churned",
                                      "reactivated")) >= 100, kinds
        split = [v for v in churn.values() if len(v) > 1]
        assert not split, "a repeated churn alert changed: %r" % split[:3]
        lost = set(expected_churn) - set(churn)
        extra = set(churn) - set(expected_churn)
        assert not lost and not extra, (
            "churn alerts lost %d, e.g. %r; not in the run without faults "
            "%d, e.g. %r" % (
                len(lost), [expected_churn[k] for k in sorted(lost)[:2]],
                len(extra), [churn[k] for k in sorted(extra)[:2]]))
        differ = [k for k in churn if churn[k] != expected_churn[k]]
        assert not differ, "churn alerts that differ from the run without " \
            "faults: %r" % [(churn[k], expected_churn[k]) for k in differ[:2]]
        print("kills survived %d (%d while applying; Redis killed in %d of "
              "them; %d of %d events applied "
              "at the last kill); events checked %d, customers %d; alerts %d "
              "for %d transitions (%d repeats, same ids): lost = 0, "
              "doubled = 0; churn alerts %d, as without faults (customers "
              "with an event beyond the lateness left out: %d)" % (
                  kills, busy, redis_kills, at_last_kill, len(lines),
                  len(lines),
                  len(fold.customers), len(alerts), len(want),
                  len(alerts) - len(want), len(churn), len(excluded)))


if __name__ == "__main__":
    sys.exit(main())
