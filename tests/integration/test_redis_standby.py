"""test_redis_standby.py: an instance that owns no partition (a standby)
and saw Redis go and come back still takes over when the owner stops.

A standby is handed an empty assignment, and librdkafka waits for it to
be put in force like any other: until it is, the instance is in the
middle of that rebalance and joins no later one.

While Redis is away journeyd consumes nothing, so what reaches its Kafka
queue then (the consumer's statistics, every second) stays there; the
queue wakes journeyd only when it goes from empty to non-empty, so
journeyd must look at it again once Redis is back. An owner has its
partitions rewound then, which does; a standby has none, so unless the
return of Redis itself does, it never serves its queue again: not the
rebalance that hands it the partition when the owner stops, and the
stream stalls.
"""
import sys
import time

import harness

ONE = {"touchpoints": 1, "journey.stage-change": 1, "journey.churn-risk": 1,
       "journey.dead-letter": 1}


def wait_log(st, p, text, count=1):
    harness.wait_for("%r in journeyd's log" % text,
                     lambda: st.journeyd_log(p).count(text) >= count, 60)


def main():
    with harness.Stack(harness.build_dir(), "standby", ONE) as st:
        lines = st.loadgen("-c", 200, "-n", 2000, "-s", 7)
        config = st.write_config("redis.timeout_ms = 500\n")
        first = st.start_journeyd(config)
        wait_log(st, first, "kafka: assigned 1 partitions")
        # what each logs from the second's start on
        since = {first: len(st.journeyd_log(first))}
        second = st.start_journeyd(config)
        since[second] = 0

        def log(p):
            return st.journeyd_log(p)[since[p]:]

        # the partition goes to the member whose id sorts first, and the
        # mock cluster makes ids of addresses: either may be the standby
        harness.wait_for("a standby", lambda: any(
            "kafka: assigned 0 partitions" in log(p) for p in since), 60)
        standby = first if "kafka: assigned 0 partitions" in log(first) \
            else second
        owner = second if standby is first else first
        st.produce("touchpoints", lines[:1000])
        st.wait_applied(1000, [owner, standby])

        st.kill_redis()
        time.sleep(3)	# statistics queue up meanwhile
        st.start_redis()
        for p in (owner, standby):
            wait_log(st, p, "redis: connected again")

        assert st.stop_journeyd(owner) == 0, st.journeyd_log(owner)[-2000:]
        st.produce("touchpoints", lines[1000:])
        st.wait_applied(len(lines), [standby], timeout=60)
        assert "kafka: assigned 1 partitions" in log(standby)
        assert st.stop_journeyd(standby) == 0, \
            st.journeyd_log(standby)[-2000:]
    print("the standby, after Redis came back, took the partition over "
          "and applied the rest of the stream")


if __name__ == "__main__":
    sys.exit(main())
