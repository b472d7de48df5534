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


def reload(st, jd, config, text):
    tags = st.redis.hgetall("journey:due_model")
    with open(config, "w") as f:
        f.write(text)
    jd.send_signal(signal.SIGHUP)
    harness.wait_for("the index swept with the new tag",
                     lambda: st.redis.hgetall("journey:due_model") != tags,
                     30)


def main():
    with harness.Stack(harness.build_dir(), "stage-gone") as st:
        base = st.write_config("", clock="wall")
        head = open(base).read()
        config = st.write_config(WITH_BUY, clock="wall")
        jd = st.start_journeyd(config)
        t0 = int(time.time() * 1000)
        st.produce_events([
            {"customer_id": "buyer", "type": "visit", "ts": t0},
            {"customer_id": "buyer", "type": "buy", "ts": t0 + 1},
            {"customer_id": "browser", "type": "visit", "ts": t0 + 1},
            {"customer_id": "deleted", "type": "buy", "ts": t0 + 1}])
        st.wait_applied(4, [jd])
        assert st.redis.customer("buyer")["stage"] == "buy"
        placed = entry(st, "buyer")
        assert placed is not None and placed < END_OF_TIME, placed
        deleted_home = st.redis.customer("deleted")["home"]
        assert st.redis("DEL", "journey:{deleted}") == 1

        reload(st, jd, config, head + WITHOUT_BUY)
        harness.wait_for("buyer's entry put off, deleted's removed",
                         lambda: entry(st, "buyer") == END_OF_TIME and
                         st.redis("ZSCORE", "journey:due:" + deleted_home,
                                  "deleted") is None, 30)

        reload(st, jd, config, head + WITH_BUY)
        harness.wait_for("buyer's entry back at its deadline",
                         lambda: entry(st, "buyer") < END_OF_TIME, 30)
        harness.wait_for("browser churned", lambda: churned(st, "browser"),
                         60)
        harness.wait_for("buyer churned, its stage back",
                         lambda: churned(st, "buyer"), 30)
        assert st.stop_journeyd(jd) == 0
        print("stage gone and back: its silent customer's entry put off "
              "(not removed), placed again by the sweep, and churned; a "
              "deleted customer's entry removed")


if __name__ == "__main__":
    sys.exit(main())
