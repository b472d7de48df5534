"""test_reload.py: SIGHUP puts an edited config in force without a restart,
and refuses a broken one.

1. A SIGHUP in the middle of a steady stream (the reload waits until
   nothing is in flight): the stream is applied exactly once (the state
   equals an independent fold, one alert per transition).
2. Rules A: trial_start leads nowhere, so a customer seen with visit and
   then trial_start stays a lead. The file is rewritten with rules B (a
   trial stage for trial_start) and a changed batch_max, then SIGHUP:
   customers whose events come after the reload (an old one and a new one)
   move to trial by the new rule, while the same process keeps running;
   batch_max is logged as needing a restart.
3. The file is rewritten with rules that would send trial_start to buyer,
   followed by a broken line: journeyd logs FILE:LINE of it, keeps rules B
   in force (a new customer's trial_start still leads to trial, not buyer)
   and keeps running.
"""
import json
import signal
import sys

import harness
from fold import Fold, check_outcome

RULES_A = """\
stage.lead = visit
stage.buyer = purchase
"""
RULES_B = """\
stage.lead = visit
stage.trial = trial_start
stage.buyer = purchase
"""
BROKEN = """\
stage.lead = visit
stage.buyer = purchase, trial_start
max_inflight = lots
"""
BROKEN_LINE = 8  # write_config writes 5 lines before the extra text


def main():
    with harness.Stack(harness.build_dir(), "reload") as st:
        ts = [1767225600000]

        def send(customer, *types):
            lines = []
            for t in types:
                ts[0] += 60000
                lines.append("%s\t%s" % (customer, json.dumps(
                    {"customer_id": customer, "type": t, "ts": ts[0]})))
            st.produce("touchpoints", lines)
            return len(lines)

        def stage(customer):
            return st.redis.hgetall("journey:{%s}" % customer).get("stage")

        def reload(rules, expect):
            """Rewrites the file, SIGHUP; returns the log lines it made."""
            before = len(st.journeyd_log(jd))
            st.write_config(rules)
            jd.send_signal(signal.SIGHUP)
            harness.wait_for(expect, lambda: expect in
                             st.journeyd_log(jd)[before:])
            assert jd.poll() is None, st.journeyd_log(jd)[-3000:]
            return st.journeyd_log(jd)[before:]

        # a reload in the middle of a stream (default rules throughout)
        config = st.write_config("max_inflight = 2000\n")
        jd = st.start_journeyd(config)
        lines = st.loadgen("-c", 300, "-n", 6000, "-s", 7)
        feeder = st.feed(lines, 200, 0.1)
        st.wait_applied(2000, [jd])
        reload("max_inflight = 1000\n", "reloaded " + config)
        feeder.join()
        st.wait_applied(len(lines), [jd])
        check_outcome(st, Fold(lines), exactly_once=True)
        waited = "reload waits for" in st.journeyd_log(jd)
        sent = len(lines)

        # rules A, then rules B: only events after the reload follow B
        reload(RULES_A + "batch_max = 500\n", "reloaded " + config)
        sent += send("old", "visit", "trial_start")
        st.wait_applied(sent, [jd])
        assert stage("old") == "lead", stage("old")
        log = reload(RULES_B + "batch_max = 100\n", "reloaded " + config)
        assert "batch_max changed but needs a restart, kept" in log, log
        sent += send("old", "trial_start")
        sent += send("new", "visit", "trial_start")
        st.wait_applied(sent, [jd])
        assert (stage("old"), stage("new")) == ("trial", "trial"), \
            (stage("old"), stage("new"))

        # a broken file: refused with FILE:LINE, rules B stay in force
        log = reload(BROKEN, "%s:%d: max_inflight" % (config, BROKEN_LINE))
        assert "reload refused, running config kept" in log, log
        sent += send("after-broken", "visit", "trial_start")
        st.wait_applied(sent, [jd])
        assert stage("after-broken") == "trial", stage("after-broken")
        assert jd.poll() is None
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        print("reload mid-stream of %d events (%s): lost = 0, doubled = 0; "
              "new rule in force for events after SIGHUP (lead -> trial), "
              "restart-only batch_max kept; broken file refused at "
              "journeyd.conf:%d with the old rules kept" % (
                  len(lines), "waited for in-flight work" if waited else
                  "nothing was in flight", BROKEN_LINE))


if __name__ == "__main__":
    sys.exit(main())
