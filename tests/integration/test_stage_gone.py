"""test_stage_gone.py: a stage removed from the config and put back keeps
its silent customers' deadlines.

A reload that removes stage `buy` changes the deadline tag (stage names
are in it), so the index is swept, and each customer of `buy` loads with
no stage to settle. Its index entry is put off to the end of time, not
removed: nothing else would place it again, since a silent customer is
not written. The reload that puts `buy` back sweeps the index again, and
the entry moves to the customer's deadline: it churns like a customer
whose stage was never gone. A customer whose key was deleted loses its
entry.

Then the same, but with the index's tag set back to the one of the
config with `buy` before that config comes back, as when a reload is
reverted before the sweep of the other was recorded: the tag is the
running one's, so the index is not swept, but the entries put off are
looked at again, and the customer churns too.
"""
import json
import signal
import sys
import time

import harness

WITH_BUY = """\
stage.browse = visit
stage.buy = buy
churn.cadence = 4s
churn.after = 12s
"""
WITHOUT_BUY = """\
stage.browse = visit
churn.cadence = 4s
churn.after = 12s
"""
END_OF_TIME = 253402300799999   # TIMESTAMP_MAX_MS


def churned(st, cid):
    return any(json.loads(m["value"])["customer_id"] == cid and
               json.loads(m["value"])["type"] == "churned"
               for m in st.consume("journey.churn-risk"))


def entry(st, cid):
    home = st.redis.customer(cid)["home"]
    score = st.redis("ZSCORE", "journey:due:" + home, cid)
    return None if score is None else int(float(score))


def tags(st):
    return st.redis.hgetall("journey:due_model")


def reload(jd, config, text):
    with open(config, "w") as f:
        f.write(text)
    jd.send_signal(signal.SIGHUP)


def buyer(st, jd, cid, applied):
    """cid visits and buys: in stage buy, its entry at its deadline."""
    t0 = int(time.time() * 1000)
    st.produce_events([{"customer_id": cid, "type": "visit", "ts": t0},
                       {"customer_id": cid, "type": "buy", "ts": t0 + 1}])
    st.wait_applied(applied + 2, [jd])
    assert st.redis.customer(cid)["stage"] == "buy"
    placed = entry(st, cid)
    assert placed is not None and placed < END_OF_TIME, placed


def remove_buy(st, jd, config, head, cid):
    before = tags(st)
    reload(jd, config, head + WITHOUT_BUY)
    harness.wait_for("the index swept with the new tag",
                     lambda: tags(st) != before, 30)
    harness.wait_for("%s's entry put off" % cid,
                     lambda: entry(st, cid) == END_OF_TIME, 30)
    # the entry moves while the sweep's batch is applied, its partition's
    # tag is recorded when the batch is done: a tag set back before that
    # would be written over
    home = st.redis.customer(cid)["home"]
    assert home in before, (home, before)
    harness.wait_for("%s's partition swept with the new tag" % cid,
                     lambda: tags(st).get(home) not in (before[home],
                                                        "unswept"), 30)
    return before


def main():
    with harness.Stack(harness.build_dir(), "stage-gone") as st:
        head = open(st.write_config("", name="head.conf",
                                    clock="wall")).read()
        config = st.write_config(WITH_BUY, clock="wall")
        jd = st.start_journeyd(config)
        t0 = int(time.time() * 1000)
        st.produce_events([
            {"customer_id": "browser", "type": "visit", "ts": t0},
            {"customer_id": "deleted", "type": "buy", "ts": t0}])
        st.wait_applied(2, [jd])
        buyer(st, jd, "buyer", 2)
        deleted_home = st.redis.customer("deleted")["home"]
        assert st.redis("DEL", "journey:{deleted}") == 1

        with_buy = remove_buy(st, jd, config, head, "buyer")
        harness.wait_for("deleted's entry removed", lambda: st.redis(
            "ZSCORE", "journey:due:" + deleted_home, "deleted") is None, 30)
        reload(jd, config, head + WITH_BUY)
        harness.wait_for("the index swept with the tag of the stage back",
                         lambda: tags(st) == with_buy, 30)
        harness.wait_for("buyer's entry back at its deadline",
                         lambda: entry(st, "buyer") < END_OF_TIME, 30)
        harness.wait_for("browser churned", lambda: churned(st, "browser"),
                         60)
        harness.wait_for("buyer churned, its stage back",
                         lambda: churned(st, "buyer"), 30)

        # the reload reverted before the other's sweep was recorded
        buyer(st, jd, "buyer2", 4)
        remove_buy(st, jd, config, head, "buyer2")
        for source, tag in with_buy.items():
            st.redis("HSET", "journey:due_model", source, tag)
        reload(jd, config, head + WITH_BUY)
        harness.wait_for("buyer2's entry back at its deadline",
                         lambda: entry(st, "buyer2") < END_OF_TIME, 30)
        harness.wait_for("buyer2 churned, its stage back",
                         lambda: churned(st, "buyer2"), 30)
        log = st.journeyd_log(jd)
        assert "put off while their stage was gone" in log, log[-3000:]
        assert st.stop_journeyd(jd) == 0
        print("stage gone and back: its silent customers' entries put off "
              "(not removed), placed again by the sweep of the config "
              "with the stage, or by a look at the entries put off where "
              "the index's tag was that config's already, and both "
              "churned; a deleted customer's entry removed")


if __name__ == "__main__":
    sys.exit(main())
