"""test_churn_sweep.py: when the churn settings change, customers already
silent are flagged at their new deadlines, not at the old ones their
deadline index entries were placed at.

1. journeyd runs with a one-hour cadence and churn after two hours, and
   starts on a backlog: 24 customers with one event each, all at the same
   millisecond (their entries tie in the index); max_inflight is small,
   so a sweep takes one entry per partition per scan: many pages, each
   after a cursor inside a tie. The index's tag (journey:due_model) is
   recorded for each partition that has an index, and nothing is swept
   (the indexes are its own: a partition with nothing in Redis has its
   index claimed when assigned). The same by stream time, where the tags
   are first read only once the partition's events are applied.
2. SIGHUP with a one-second cadence and churn after three seconds: every
   one of the 24 is churned within seconds (an hour without the sweep),
   at its new deadline, and each partition's tag changes.
   Then 200 customers indexed hours ahead, the long settings again, and
   while their sweep runs (each index tagged "unswept" at once) a new
   customer; the short settings again before that sweep ends: the new
   customer, whose entry stands at the long settings' deadline, is
   churned at the short ones' (the indexes kept the short settings' tag,
   and it was found an hour late).
3. journeyd is stopped, the file goes back to the long settings, and it
   starts again for 8 new customers; stopped again, the short settings,
   started: the 8 are churned too (a restart with an edited file sweeps
   like a reload).
4. The tag deleted by hand, with an entry ahead in each index (an index
   of an earlier build): the next start sweeps it (the entries, of no
   customer, go) and records the tag again.
5. Back to the long settings for 200 new customers, then longer ones while
   new customers keep coming, 100 a second, each indexed ahead of the
   sweep's cursor: the sweep ends at the last entry the index held when
   it began (before, it chased the new ones for as long as they came).
   A reload that changes no churn setting while it runs lets it go on
   (before, each reload started it again from the first entry).
"""
import json
import signal
import threading
import time

import harness

LONG = """\
churn.cadence = 1h
churn.after = 2h
max_inflight = 16
"""
LONGER = """\
churn.cadence = 2h
churn.after = 4h
max_inflight = 16
"""
SWEPT = 200     # customers a sweep goes through in step 5
AHEAD = 200     # customers whose entries make the sweep of step 2b last
UNSWEPT = "unswept"     # the tag of an index written before its sweep
SHORT = """\
churn.cadence = 1s
churn.after = 3s
max_inflight = 16
"""


def churned_at(st, cids):
    """customer -> the time of its churned alert, for those churned."""
    out = {}
    for m in st.consume("journey.churn-risk"):
        a = json.loads(m["value"])
        if a["type"] == "churned" and a["customer_id"] in cids:
            out[a["customer_id"]] = harness.parse_iso_ms(a["at"])
    return out


def stream(st, stop):
    """New customers, 100 a second, until stop is set (90 s at most)."""
    for n in range(450):
        if stop.is_set():
            return
        st.produce_events([{"customer_id": "n%04d-%d" % (n, i),
                            "type": "ad_click",
                            "ts": int(time.time() * 1000)}
                           for i in range(20)])
        time.sleep(0.2)


def wait_churned(st, what, cids, deadline):
    """Each of cids churned, at deadline."""
    got = harness.wait_for(what, lambda: (lambda d: d if len(d) == len(cids)
                                          else None)(churned_at(st, cids)),
                           60)
    for c, at in got.items():
        assert at == deadline, (c, at - deadline)


def tags(st):
    return st.redis.hgetall("journey:due_model")


def main():
    with harness.Stack(harness.build_dir(), "churn-sweep") as st:
        # a backlog, applied before any scan reads the tags: the indexes
        # journeyd fills from nothing are its own, not an earlier build's
        t0 = int(time.time() * 1000)
        first = ["c%02d" % i for i in range(24)]
        st.produce_events([{"customer_id": c, "type": "ad_click", "ts": t0}
                           for c in first])
        # by stream time, a partition is first scanned once an event of it
        # is applied: its index holds entries when its tag is first read
        config = st.write_config(LONG + "group = evclock\n"
                                 "redis.prefix = evclock:\n",
                                 name="evclock.conf")
        jd = st.start_journeyd(config, "journeyd-evclock.log")
        st.wait_applied(24, [jd], prefix="evclock:")
        harness.wait_for("each index tagged, by stream time", lambda: len(
            st.redis.hgetall("evclock:due_model")) == st.topics[
                "touchpoints"], 30)
        assert st.stop_journeyd(jd) == 0
        assert "sweeping it" not in st.journeyd_log(jd), \
            st.journeyd_log(jd)[-3000:]
        config = st.write_config(LONG, clock="wall")
        jd = st.start_journeyd(config)
        st.wait_applied(24, [jd])
        homes = {st.redis.customer(c)["home"] for c in first}
        long_tags = harness.wait_for(
            "each index tagged",
            lambda: (lambda t: t if set(t) >= homes else None)(tags(st)), 30)
        assert "sweeping it" not in st.journeyd_log(jd), \
            st.journeyd_log(jd)[-3000:]
        for c in first:
            home = st.redis.customer(c)["home"]
            entry = int(st.redis("ZSCORE", "journey:due:" + home, c))
            assert entry >= t0 + 3600 * 1000, (c, entry - t0)

        # 2. a reload shortens the deadlines
        st.write_config(SHORT, clock="wall")
        jd.send_signal(signal.SIGHUP)
        wait_churned(st, "the first 24 churned after the reload", first,
                     t0 + 3000)
        assert "sweeping it" in st.journeyd_log(jd)
        short_tags = harness.wait_for(
            "each index tagged anew",
            lambda: (lambda t: t if all(t.get(h) not in (None, long_tags[h],
                                                         UNSWEPT)
                                        for h in homes) else None)(tags(st)),
            30)
        assert len(set(short_tags.values())) == 1, short_tags

        # 2b. the long settings for a moment, then the short again before
        # the long ones' sweep ends: a customer written meanwhile, its
        # entry at the long settings' deadline, is churned at the short
        # ones' (the indexes used to keep the short settings' tag, and it
        # was found an hour late)
        ahead = int(time.time() * 1000) + 2 * 3600 * 1000
        applied = st.applied_offsets()
        st.produce_events([{"customer_id": "ahead%03d" % i,
                            "type": "ad_click", "ts": ahead}
                           for i in range(AHEAD)])
        st.wait_applied(applied + AHEAD, [jd])
        st.write_config(LONG, clock="wall")
        before = len(st.journeyd_log(jd))
        jd.send_signal(signal.SIGHUP)
        harness.wait_for("the long settings' sweep", lambda: "sweeping it"
                         in st.journeyd_log(jd)[before:])
        t_meanwhile = int(time.time() * 1000)
        st.produce_events([{"customer_id": "meanwhile", "type": "ad_click",
                            "ts": t_meanwhile}])
        st.wait_applied(applied + AHEAD + 1, [jd])
        assert set(tags(st).values()) == {UNSWEPT}, \
            "the sweep ended before the reload: nothing was checked"
        st.write_config(SHORT, clock="wall")
        jd.send_signal(signal.SIGHUP)
        wait_churned(st, "the customer written meanwhile churned",
                     ["meanwhile"], t_meanwhile + 3000)
        assert st.stop_journeyd(jd) == 0

        # 3. a restart with the long settings, then with the short
        config = st.write_config(LONG, clock="wall")
        jd = st.start_journeyd(config)
        t1 = int(time.time() * 1000)
        second = ["d%02d" % i for i in range(8)]
        applied = st.applied_offsets()
        st.produce_events([{"customer_id": c, "type": "ad_click", "ts": t1}
                           for c in second])
        st.wait_applied(applied + len(second), [jd])
        harness.wait_for("the indexes tagged with the long settings again",
                         lambda: set(tags(st).values()) ==
                         set(long_tags.values()), 30)
        assert churned_at(st, second) == {}
        assert st.stop_journeyd(jd) == 0
        config = st.write_config(SHORT, clock="wall")
        jd = st.start_journeyd(config)
        wait_churned(st, "the 8 churned after the restart", second,
                     t1 + 3000)
        assert st.stop_journeyd(jd) == 0

        # 4. no tag, an index: an earlier build's, swept
        # (in the indexes of partitions with a watermark: one without has
        # nothing of any build's in Redis, and is claimed when assigned)
        st.redis("DEL", "journey:due_model")
        ahead = int(time.time() * 1000) + 3600 * 1000
        applied = list(st.redis.hgetall("journey:offsets"))
        for source in applied:
            st.redis("ZADD", "journey:due:" + source, ahead, "gone")
        jd = st.start_journeyd(config)
        harness.wait_for("the untagged index swept",
                         lambda: "sweeping it" in st.journeyd_log(jd), 30)
        # a customer with no journey loses its entry when it is found
        harness.wait_for("the entries of no customer dropped", lambda: all(
            st.redis("ZSCORE", "journey:due:" + source, "gone") is None
            for source in applied), 30)
        harness.wait_for("the tags recorded again",
                         lambda: set(short_tags.values()) <=
                         set(tags(st).values()), 30)

        # 5. a sweep ends at the last entry it began with, though new
        # customers keep coming (one entry a page at most)
        st.write_config(LONG, clock="wall")
        jd.send_signal(signal.SIGHUP)
        # enough that the sweep (a page of one entry per partition every
        # 200 ms) takes seconds: it must still run at the next reload
        applied = st.applied_offsets()
        st.produce_events([{"customer_id": "f%03d" % i, "type": "ad_click",
                            "ts": int(time.time() * 1000)}
                           for i in range(SWEPT)])
        harness.wait_for("the long settings' tags", lambda: set(
            tags(st).values()) == set(long_tags.values()), 30)
        st.wait_applied(applied + SWEPT, [jd])
        st.write_config(LONGER, clock="wall")
        before = len(st.journeyd_log(jd))
        jd.send_signal(signal.SIGHUP)
        harness.wait_for("the sweep to start", lambda: "sweeping it" in
                         st.journeyd_log(jd)[before:])
        # a reload that leaves the churn settings as they are lets the
        # sweep go on (restarted at each reload, it might never end)
        st.write_config(LONGER + "log_level = info\n", clock="wall")
        before = len(st.journeyd_log(jd))
        jd.send_signal(signal.SIGHUP)
        harness.wait_for("the second reload", lambda: "reloaded" in
                         st.journeyd_log(jd)[before:])
        long_tag = set(long_tags.values()).pop()
        assert set(tags(st).values()) == {UNSWEPT}, \
            "the sweep ended before the reload: nothing was checked"
        stop = threading.Event()
        feeder = threading.Thread(target=stream, args=(st, stop))
        feeder.start()
        try:
            harness.wait_for("the sweep to end under a stream", lambda: all(
                v not in (long_tag, UNSWEPT) for v in tags(st).values()), 90)
            assert feeder.is_alive(), "the stream ended first"
        finally:
            stop.set()
            feeder.join()
        assert "sweeping it" not in st.journeyd_log(jd)[before:], \
            "a reload that changed no churn setting started the sweep again"
        assert st.stop_journeyd(jd) == 0
    print("churn sweep: ok")


if __name__ == "__main__":
    main()
