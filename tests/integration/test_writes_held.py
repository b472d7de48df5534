"""test_writes_held.py: while Redis holds journeyd's state writes, the
next batches still load their customers, apply and send their alerts, and
the journey map page still answers; once Redis lets the writes run,
everything lands exactly once.

journeyd loads customers on a connection of its own (the reader), so a
load never waits behind the writes in flight. `CLIENT PAUSE ms WRITE`
makes Redis hold every command that may write (the state script among
them) and serve reads: a batch's write is held, then an event of another
customer comes. Were its load queued behind that write, as on a single
connection, neither its alert nor the page could come before the pause
ends; the test checks that both come while the first write is still
held (its customer's key absent, the watermark unmoved).

The deadline index is read on the reader too: a customer whose deadline
a later event's time passed is alerted by the timers while writes are
held. And so is the name table: a customer whose state numbers a name
another instance added is loaded again after a read of the table, and
both must come in that order even with writes in flight (were the table
read on the writer, behind the held write, the second load would come
first and the customer's event be dead-lettered as unreadable).
"""
import json
import sys

import harness

PAUSE_MS = 60000	# ended by CLIENT UNPAUSE; long, for a loaded machine
WAIT_S = 10		# for each alert: four fit in the pause
CONFIG = "redis.timeout_ms = %d\n" % (4 * PAUSE_MS)	# held is not lost


def event(cid, etype, offset_s):
    return {"customer_id": cid, "type": etype, "event_id": "%s-%s" % (cid,
            etype), "ts": "2026-03-01T10:%02d:%02dZ" % divmod(offset_s, 60)}


def alerts_for(st, cid, topic="journey.stage-change"):
    return [a for a in (json.loads(m["value"]) for m in st.consume(topic))
            if a["customer_id"] == cid]


def other_instance_numbers_a_name(st, jd):
    """A second journeyd (its own group and topic, the same Redis) writes
    "other-x" twice: the first write spells out names journeyd has never
    seen, the script numbers them, and the second state numbers them."""
    other = st.start_journeyd(st.write_config(
        "group = other\ntopic.input = elsewhere\n", name="other.conf"))
    for i in range(2):
        st.produce_events([dict(event("other-x", "kiosk_visit", 1 + i),
                                event_id="other-x-%d" % i,
                                channel="kiosk")], topic="elsewhere")
        st.wait_applied(2 + i, [jd, other])
    assert st.stop_journeyd(other) == 0, st.journeyd_log(other)[-2000:]
    names = st.redis("LRANGE", "journey:names", 0, -1)
    assert "kiosk_visit" in names and "kiosk" in names, names


def main():
    # one partition: one event-time clock for the deadlines
    topics = dict(harness.Stack.TOPICS, touchpoints=1, elsewhere=1)
    with harness.Stack(harness.build_dir(), "writesheld",
                       topics=topics) as st:
        jd = st.start_journeyd(st.write_config(CONFIG, http=True))
        st.produce_events([event("held-a", "ad_click", 0)])
        st.wait_applied(1, [jd])
        assert st.redis("EXISTS", "journey:{held-a}") == 1
        other_instance_numbers_a_name(st, jd)
        applied = st.applied_offsets()

        assert st.redis("CLIENT", "PAUSE", str(PAUSE_MS), "WRITE") == "OK"
        # held-b's load is a read: answered, alerted; its write is held
        st.produce_events([event("held-b", "ad_click", 10)])
        harness.wait_for("held-b's alert", lambda: alerts_for(st, "held-b"),
                         WAIT_S)
        assert st.redis("EXISTS", "journey:{held-b}") == 0, \
            "the write was not held: the test proves nothing"
        # held-c's load comes after held-b's held write
        st.produce_events([event("held-c", "product_view", 20)])
        harness.wait_for("held-c's alert, with held-b's write still held",
                         lambda: alerts_for(st, "held-c"), WAIT_S)
        status, body = st.http_get("/api/customer/held-a")
        # other-x's state numbers names this journeyd has not read
        before = len(alerts_for(st, "other-x"))	# the other's
        st.produce_events([event("other-x", "product_view", 30)])
        harness.wait_for("other-x's alert, with held-b's write still held",
                         lambda: len(alerts_for(st, "other-x")) > before,
                         WAIT_S)
        # 100 days on: held-a's deadlines (30 and 90 days of silence,
        # the default) fall due, and only the timers can find them
        st.produce_events([dict(event("clock", "ad_click", 0),
                                ts="2026-06-09T10:00:00Z")])
        harness.wait_for("held-a's churn alert, with held-b's write still "
                         "held", lambda: alerts_for(st, "held-a",
                                                    "journey.churn-risk"),
                         WAIT_S)
        held = (st.redis("EXISTS", "journey:{held-b}"),
                st.redis("EXISTS", "journey:{held-c}"),
                st.redis("EXISTS", "journey:{clock}"),
                st.applied_offsets())
        assert held == (0, 0, 0, applied), \
            "the pause ended before the checks: %r" % (held,)
        assert status == 200 and json.loads(body)["customer_id"] == "held-a", \
            (status, body)

        st.redis("CLIENT", "UNPAUSE")
        st.wait_applied(applied + 4, [jd])
        dead = st.consume("journey.dead-letter")
        assert not dead, dead
        for cid, events in (("held-a", 1), ("held-b", 1), ("held-c", 1),
                            ("other-x", 3), ("clock", 1)):
            state = st.redis.customer(cid)
            assert int(state.get("events", 0)) == events, (cid, state)
        for cid in ("held-a", "held-b", "held-c"):
            assert len(alerts_for(st, cid)) == 1, (cid, alerts_for(st, cid))
        assert st.redis.customer("held-a").get("churned"), \
            st.redis.customer("held-a")
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        log = st.journeyd_log(jd)
        assert "redis: connection lost" not in log and \
            "no reply within" not in log, log[-2000:]
        print("with the state writes held by CLIENT PAUSE WRITE, the next "
              "four customers were loaded and alerted (one of them after "
              "reading names another instance added), the timers alerted a "
              "customer past its deadlines, and the customer page "
              "answered; after it, every customer written, no dead letter")


if __name__ == "__main__":
    sys.exit(main())
