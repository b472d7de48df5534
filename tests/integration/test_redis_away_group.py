"""test_redis_away_group.py: while its Redis is away, journeyd is still a
good member of its consumer group, and loses nothing.

A owns every partition, events flowing, when its Redis is killed. Then:
1. B joins the group, with a Redis of its own: A gives its partitions up
   with its Redis still down, and takes back the share the group hands it
   (in force at once, paused, not waiting for watermarks), and B gets
   partitions. (A used to sit on the rebalance until its Redis came back:
   the whole group waited.)
2. C joins, sharing B's Redis: A takes part in this rebalance too, and
   gives up what it was handed ("revoking", not "lost": a member waiting
   for watermarks took part in no further rebalance until the group timed
   it out) and C gets partitions.
3. Every broker goes down and comes back: A's /healthz says "kafka
   unreachable", then no longer does, "redis down" throughout (errors and
   statistics used to wait, unread, while consumption took nothing).
4. A's Redis starts again but flaps: its clients are killed over and over,
   so A is connected for moments only. That is still the outage: its
   Redis away for its max.poll.interval.ms, A leaves the group, and B and
   C take all of its partitions. (A used to start counting again at each
   moment it was connected, and so never left.) While Redis flaps, A
   stays out, /healthz and /metrics saying so, rather than rebalancing
   the whole group at each moment (a failed first check: it joined again
   at once).
5. A's Redis stays up: A joins again, is assigned partitions and healthy.
   The outage is over: Redis lost again for 2 s starts a count of its
   own, and A stays in the group (it would leave at once were the old
   outage still counted). Every event's customer is in A's Redis or in B
   and C's: what A dropped while its Redis was away was read again by
   whoever owns it now.

With --cooperative, the same with the cooperative protocol (cooperative-
sticky), where a rebalance hands over and revokes a few partitions while
the rest stay: partitions handed to A join those it holds, paused, and
C's share may come from B alone.
"""
import os
import re
import sys
import threading
import time

import harness

AWAY_MS = 60000    # A's max.poll.interval.ms: the steps before 4 fit in it
EVENTS = 3000
COOPERATIVE = "--cooperative" in sys.argv
STRATEGY = ("kafka.consumer.partition.assignment.strategy = "
            "cooperative-sticky\n" if COOPERATIVE else "")


def rebalances(log):
    """How many rebalances a journeyd's log says it took part in: each ends
    in an assignment (an empty one too)."""
    return log.count("kafka: assigned ")


def holding(log):
    """The partitions a journeyd's log says it holds: those assigned less
    those revoked or lost since. (The eager protocol revokes everything
    before it assigns; the cooperative one assigns and revokes a few.)"""
    held = set()
    for what, names in re.findall(
            r"kafka: (assigned|revoking|lost) \d+ partitions:([^\n]*)", log):
        if what == "assigned":
            held |= set(names.split())
        else:
            held -= set(names.split())
    return held


def flap(port, stop):
    """Kills every other client of the Redis on port, over and over,
    until stop is set."""
    killer = harness.Redis(port)
    while not stop.is_set():
        try:
            killer("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        except (OSError, RuntimeError):
            pass
        time.sleep(0.02)


def main():
    with harness.Stack(harness.build_dir(), "redisaway") as st:
        a = st.start_journeyd(st.write_config(
            "kafka.consumer.max.poll.interval.ms = %d\n" % AWAY_MS +
            STRATEGY, http=True), "journeyd-a.log")

        def a_log():
            assert a.poll() is None, st.journeyd_log(a)[-3000:]
            return st.journeyd_log(a)

        def health(*reasons, absent=()):
            def check():
                a_log()
                status, body = st.http_get("/healthz")
                return status == 503 and \
                    all(r in body for r in reasons) and \
                    not any(r in body for r in absent)
            harness.wait_for("/healthz %s, not %s" % (reasons, absent),
                             check, 60)

        harness.wait_for("A up", lambda: a_log() and st.http_get(
            "/healthz") == (200, "ok\n"), 60)
        ids = ["away-%d" % i for i in range(EVENTS)]
        feeder = st.feed(["%s\t{\"customer_id\":\"%s\",\"type\":\"ad_click\","
                          "\"ts\":%d}" % (c, c, 1767225600000 + i)
                          for i, c in enumerate(ids)], 100, 0.1)
        harness.wait_for("events applied", lambda: st.applied_offsets() >
                         300, 60)
        st.kill_redis()
        health("redis down")

        # B and C: a Redis of their own (what A's holds is A's to check)
        bc_port = harness.free_port()
        st.start_other_redis("redis-bc", "--port", str(bc_port), "--bind",
                             "127.0.0.1", "--appendonly", "yes")
        bc_redis = harness.Redis(bc_port)

        def bc_up():
            try:
                return bc_redis("PING") == "PONG"
            except OSError:
                return False
        harness.wait_for("B and C's Redis", bc_up, 20)
        bc_conf = os.path.join(st.tmp, "bc.conf")
        with open(st.write_config(STRATEGY, name="bc-base.conf")) as f, \
                open(bc_conf, "w") as out:
            out.writelines(l for l in f if not l.startswith("redis "))
            out.write("redis = 127.0.0.1:%d\n" % bc_port)

        joined = []
        for name in ("B", "C"):
            revoked = a_log().count("kafka: revoking")
            handed = rebalances(a_log())
            p = st.start_journeyd(bc_conf, "journeyd-%s.log" % name.lower())
            joined.append(p)
            # (the cooperative protocol may take C's share from B alone)
            if name == "B" or not COOPERATIVE:
                harness.wait_for(
                    "A to give its partitions up (%s joining)" % name,
                    lambda: a_log().count("kafka: revoking") > revoked, 60)
            harness.wait_for(
                "partitions for %s" % name, lambda: holding(
                    st.journeyd_log(p)), 60)
            harness.wait_for(
                "A's share handed to it, its Redis down (%s)" % name,
                lambda: rebalances(a_log()) > handed, 60)
            log = a_log()
            assert "kafka: lost" not in log and "leaving the consumer " \
                "group" not in log, log[-3000:]
        feeder.join()

        assert st.broker_command("down -1") == "ok"
        health("redis down", "kafka unreachable")
        assert st.broker_command("up -1") == "ok"
        health("redis down", absent=("kafka unreachable",))

        mark = len(a_log())
        st.start_redis()
        stop_flapping = threading.Event()
        flapper = harness.Feeder(lambda: flap(st.redis_port, stop_flapping))
        flapper.start()
        harness.wait_for("A to leave the group", lambda: "leaving the "
                         "consumer group" in a_log(), AWAY_MS / 1000 + 60)
        # (had the steps before taken A's whole max.poll.interval.ms, it
        # would have left with its Redis down throughout)
        log = a_log()[mark:]
        assert 0 <= log.find("redis: connected again") < \
            log.find("leaving the consumer group"), log[-3000:]
        harness.wait_for("B and C to hold every partition", lambda: len(
            holding(st.journeyd_log(joined[0])) |
            holding(st.journeyd_log(joined[1]))) ==
            st.topics["touchpoints"] and not holding(a_log()), 60)
        connected = a_log().count("redis: connected again")
        harness.wait_for("A connected twice more, Redis flapping", lambda:
                         a_log().count("redis: connected again") >=
                         connected + 2, 60)
        assert "joining the group again" not in a_log(), a_log()[-3000:]
        status, body = st.http_get("/healthz")
        assert status == 503 and "out of the consumer group" in body, body
        assert st.metrics()["journeyd_kafka_left_group"][frozenset()] == 1
        stop_flapping.set()
        flapper.join()
        harness.wait_for("A back in the group, with partitions", lambda:
                         "joining the group again" in a_log() and
                         holding(a_log()), 60)
        harness.wait_for("A healthy again", lambda: a_log() and st.http_get(
            "/healthz") == (200, "ok\n"), 60)
        assert st.metrics()["journeyd_kafka_left_group"][frozenset()] == 0

        # Redis stayed up: that outage is over, and a new one starts its
        # own count (it would have had A leave at once)
        mark = len(a_log())
        st.kill_redis()
        health("redis down")
        time.sleep(2)
        st.start_redis()
        harness.wait_for("A healthy after a short outage", lambda: a_log()
                         and st.http_get("/healthz") == (200, "ok\n"), 60)
        assert "leaving the consumer group" not in a_log()[mark:], \
            a_log()[mark:][-3000:]

        def missing():
            return [c for c in ids if not st.redis("EXISTS", "journey:{%s}"
                                                   % c) and
                    not bc_redis("EXISTS", "journey:{%s}" % c)]
        harness.wait_for("every customer in A's Redis or B and C's",
                         lambda: not missing(), 120)
        for p in joined + [a]:
            assert st.stop_journeyd(p) == 0, st.journeyd_log(p)[-3000:]
        print("Redis away (%s protocol): A gave its partitions up to B, "
              "then to C, saw the brokers go and come back, left the group "
              "after %d ms though its Redis flapped, stayed out while it "
              "did, and joined again once it stayed up; all %d customers "
              "stored" % ("cooperative" if COOPERATIVE else "eager",
                          AWAY_MS, EVENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
