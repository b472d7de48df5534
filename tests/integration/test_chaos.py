"""test_chaos.py: the faults the other tests try one at a time, mixed.

Three journeyds in one consumer group on eight partitions, under a steady
stream of 30,000 events (duplicates, late, tied and channel-less events
among them: loadgen -d), each of these comes three times, in a shuffled
order, at random moments (a fixed seed; the last may come once the
stream is in):
- kill -9 of an instance, started again at once or a few seconds later
  (the group rebalances without it meanwhile);
- SIGTERM of an instance, which must exit 0, started again;
- Redis killed (-9) and started again on its AOF, alone or together with
  an instance killed in the same second;
- the churn cadence changed and SIGHUP sent to most instances (their
  deadline indexes are swept);
- an instance frozen (SIGSTOP) past its session timeout, then continued:
  its partitions go to another while its batches are still in flight.
No instance may exit by itself. Once the stream is in and everything is
applied: Redis equals the fold of every event, each partition's watermark
is the number of events produced to it, every stage change is alerted
(repeats with their alert_id) and none that should not be, and every
instance exits 0 on SIGTERM.

--strategy picks the assignment protocol: range (eager) by default, or
cooperative-sticky.
"""
import collections
import random
import signal
import sys
import time

import harness
from fold import Fold, check_outcome

INSTANCES, PARTITIONS = 3, 8
CUSTOMERS, EVENTS = 3000, 30000
CHUNK, PERIOD = 200, 0.35  # about 570 events/s: a minute
FAULTS = ("kill", "term", "redis", "redis+kill", "reload", "freeze")
SESSION_MS = 3000


def main():
    strategy = "range"
    if "--strategy" in sys.argv:
        strategy = sys.argv[sys.argv.index("--strategy") + 1]
    rng = random.Random(7 if strategy == "range" else 11)
    topics = dict(harness.Stack.TOPICS, touchpoints=PARTITIONS)
    with harness.Stack(harness.build_dir(), "chaos", topics) as st:
        lines = st.loadgen("-c", CUSTOMERS, "-n", EVENTS, "-s", 41, "-d", 5)
        fold = Fold(lines)
        settings = ("kafka.consumer.partition.assignment.strategy = %s\n"
                    "redis.timeout_ms = 500\ndrain_timeout_ms = 3000\n"
                    "batch_max = 200\n" % strategy)

        def config(cadence):
            return st.write_config(settings + "churn.cadence = %s\n" %
                                   cadence, session_ms=SESSION_MS)

        path = config("30d")
        instances = [st.start_journeyd(path) for _ in range(INSTANCES)]

        def restart(i):
            instances[i] = st.start_journeyd(path)

        harness.wait_for("every instance assigned", lambda: all(
            "assigned" in st.journeyd_log(p) for p in instances), 60)
        faults = list(FAULTS) * 3
        rng.shuffle(faults)
        done = collections.Counter()
        feeder = st.feed(lines, CHUNK, PERIOD)
        while faults:
            time.sleep(rng.uniform(0.2, 2.0))
            for p in instances:
                assert p.poll() is None, "journeyd exited %d by itself:\n%s" \
                    % (p.returncode, st.journeyd_log(p)[-3000:])
            kind, i = faults.pop(), rng.randrange(INSTANCES)
            p = instances[i]
            if kind == "kill":
                p.kill()
                p.wait()
                time.sleep(rng.choice((rng.uniform(0, 1), rng.uniform(2, 5))))
                restart(i)
            elif kind == "term":
                assert st.stop_journeyd(p, timeout=30) == 0, \
                    st.journeyd_log(p)[-3000:]
                time.sleep(rng.uniform(0, 2))
                restart(i)
            elif kind.startswith("redis"):
                st.kill_redis()
                if kind == "redis+kill":
                    time.sleep(rng.uniform(0, 0.5))
                    p.kill()
                    p.wait()
                time.sleep(rng.uniform(0.1, 3))
                st.start_redis()
                if kind == "redis+kill":
                    restart(i)
            elif kind == "reload":
                path = config(rng.choice(("20d", "30d", "40d")))
                for j, q in enumerate(instances):
                    if j == i or rng.random() < 0.7:
                        q.send_signal(signal.SIGHUP)
            elif kind == "freeze":
                p.send_signal(signal.SIGSTOP)
                time.sleep(rng.uniform(SESSION_MS / 1000 + 0.5, 6))
                p.send_signal(signal.SIGCONT)
            done[kind] += 1
        feeder.join()

        st.wait_applied(len(lines), instances, timeout=300)
        produced = collections.Counter(
            m["partition"] for m in st.consume("touchpoints"))
        marks = st.redis.hgetall("journey:offsets")
        for part in range(PARTITIONS):
            mark = int(marks.get("touchpoints/%d" % part, -1))
            assert mark + 1 == produced[part], (part, mark, produced[part])
        alerts = check_outcome(st, fold, exactly_once=False)
        for p in instances:
            assert st.stop_journeyd(p) == 0, st.journeyd_log(p)[-3000:]
        print("%s: %d instances, %d events of %d customers through %s; "
              "Redis equals the fold, watermarks the events produced, %d "
              "alerts for %d transitions" % (
                  strategy, INSTANCES, len(lines), CUSTOMERS,
                  ", ".join("%s x%d" % kv for kv in sorted(done.items())),
                  len(alerts), len(set(fold.transitions))))


if __name__ == "__main__":
    sys.exit(main())
