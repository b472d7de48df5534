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
"""
import json
import sys

import harness

PAUSE_MS = 8000
CONFIG = "redis.timeout_ms = %d\n" % (4 * PAUSE_MS)	# held is not lost


def event(cid, etype, offset_s):
    return {"customer_id": cid, "type": etype, "event_id": "%s-%s" % (cid,
            etype), "ts": "2026-03-01T10:%02d:%02dZ" % divmod(offset_s, 60)}


def alerts_for(st, cid):
    return [a for a in (json.loads(m["value"]) for m in
                        st.consume("journey.stage-change"))
            if a["customer_id"] == cid]


def main():
    with harness.Stack(harness.build_dir(), "writesheld") as st:
        jd = st.start_journeyd(st.write_config(CONFIG, http=True))
        st.produce_events([event("held-a", "ad_click", 0)])
        st.wait_applied(1, [jd])
        assert st.redis("EXISTS", "journey:{held-a}") == 1

        assert st.redis("CLIENT", "PAUSE", str(PAUSE_MS), "WRITE") == "OK"
        # held-b's load is a read: answered, alerted; its write is held
        st.produce_events([event("held-b", "ad_click", 10)])
        harness.wait_for("held-b's alert", lambda: alerts_for(st, "held-b"),
                         PAUSE_MS / 2000)
        assert st.redis("EXISTS", "journey:{held-b}") == 0, \
            "the write was not held: the test proves nothing"
        # held-c's load comes after held-b's held write
        st.produce_events([event("held-c", "product_view", 20)])
        harness.wait_for("held-c's alert, with held-b's write still held",
                         lambda: alerts_for(st, "held-c"), PAUSE_MS / 2000)
        status, body = st.http_get("/api/customer/held-a")
        held = (st.redis("EXISTS", "journey:{held-b}"),
                st.redis("EXISTS", "journey:{held-c}"),
                st.applied_offsets())
        assert held == (0, 0, 1), \
            "the pause ended before the checks: %r" % (held,)
        assert status == 200 and json.loads(body)["customer_id"] == "held-a", \
            (status, body)

        st.redis("CLIENT", "UNPAUSE")
        st.wait_applied(3, [jd])
        for cid in ("held-a", "held-b", "held-c"):
            state = st.redis.customer(cid)
            assert state.get("events") in (1, "1"), (cid, state)
            assert len(alerts_for(st, cid)) == 1, (cid, alerts_for(st, cid))
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-2000:]
        log = st.journeyd_log(jd)
        assert "redis: connection lost" not in log and \
            "no reply within" not in log, log[-2000:]
        print("with the state writes held by CLIENT PAUSE WRITE, the next "
              "two customers were loaded and alerted and the customer page "
              "answered; after it, 3 customers written, 3 alerts")


if __name__ == "__main__":
    sys.exit(main())
