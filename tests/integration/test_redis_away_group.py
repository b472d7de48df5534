"""test_redis_away_group.py: while its Redis is away, journeyd still
serves its Kafka consumer.

1. journeyd A owns every partition; its Redis is killed.
2. Every broker goes down, then up again: A's /healthz says "kafka
   unreachable", then no longer does, saying "redis down" throughout. (The
   consumer's errors and statistics used to wait, unread, on the queue
   that consumption takes nothing from while Redis is away.)
3. journeyd B joins the group, with a Redis of its own: A takes part in
   the rebalance with its Redis still down (its log says it gave its
   partitions up) and B is assigned some. (A used to sit on the rebalance
   until its Redis came back, or until librdkafka's max.poll.interval.ms
   made it leave the group, and the whole group waited.)
4. A's Redis is back: A is healthy again, and both stop cleanly.
"""
import os
import subprocess
import sys

import harness


def main():
    with harness.Stack(harness.build_dir(), "redisaway") as st:
        a = st.start_journeyd(st.write_config(http=True), "journeyd-a.log")
        harness.wait_for("A assigned", lambda: "assigned" in
                         st.journeyd_log(a), 60)

        def health(*reasons, absent=()):
            def check():
                assert a.poll() is None, st.journeyd_log(a)[-3000:]
                status, body = st.http_get("/healthz")
                return status == 503 and \
                    all(r in body for r in reasons) and \
                    not any(r in body for r in absent)
            harness.wait_for("/healthz %s, not %s" % (reasons, absent),
                             check, 60)

        st.kill_redis()
        health("redis down")
        assert st.broker_command("down -1") == "ok"
        health("redis down", "kafka unreachable")
        assert st.broker_command("up -1") == "ok"
        health("redis down", absent=("kafka unreachable",))

        # B's own Redis: what it applies is not what this test looks at
        b_port = harness.free_port()
        b_dir = os.path.join(st.tmp, "redis-b")
        os.mkdir(b_dir)
        b_redis = subprocess.Popen(
            ["redis-server", "--port", str(b_port), "--bind", "127.0.0.1",
             "--dir", b_dir, "--save", "", "--appendonly", "yes",
             "--logfile", os.path.join(b_dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        st.daemons.append(b_redis)      # stopped with the stack
        b_conf = os.path.join(st.tmp, "b.conf")
        with open(st.write_config(name="b-base.conf")) as f, \
                open(b_conf, "w") as out:
            out.writelines(l for l in f if not l.startswith("redis "))
            out.write("redis = 127.0.0.1:%d\n" % b_port)
        revoked_before = st.journeyd_log(a).count("revoking")
        b = st.start_journeyd(b_conf, "journeyd-b.log")
        harness.wait_for("A to give its partitions up, its Redis down",
                         lambda: st.journeyd_log(a).count("revoking") >
                         revoked_before, 60)
        harness.wait_for("B assigned", lambda: "assigned" in
                         st.journeyd_log(b), 60)
        assert a.poll() is None and st.http_get("/healthz")[0] == 503

        st.start_redis()
        harness.wait_for("A healthy again", lambda: st.http_get(
            "/healthz") == (200, "ok\n"), 60)
        assert st.stop_journeyd(b) == 0, st.journeyd_log(b)[-3000:]
        assert st.stop_journeyd(a) == 0, st.journeyd_log(a)[-3000:]
        print("with its Redis down, A saw the brokers go and come back and "
              "gave its partitions up to B; healthy again once Redis was "
              "back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
