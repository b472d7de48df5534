"""test_http.py: /metrics counts what happened; /healthz says what is wrong.

1. N good events (a loadgen stream) and M bad ones of two reasons: the
   Prometheus text (every family with # HELP and # TYPE) has applied = N,
   dead_lettered = M, dead letters per reason class, the stage-change
   alert counter equal to the messages on journey.stage-change, customers
   per stage equal to Redis's stage counts (each stage 0 before the first
   event), zero lag on every partition,
   a Redis round-trip histogram per connection whose buckets add up, with
   commands on both, and on the reader at least a load per customer. A
   customer whose stored state, or list of changes, is not journeyd's is
   answered 500 saying so; one Redis refuses to read (an ACL), 502.
2. /healthz is 200 "ok" with everything up; 503 "redis down" (and
   journeyd_redis_up 0) once redis-server is killed, 200 again after it
   restarts; 503 "kafka unreachable" while every broker is down, 200 once
   they are back.
3. health.max_lag lowered by a reload (journeyd_reloads_total 1) and Redis
   frozen under a backlog: 503 "consumer lag"; 200 again once it drains.
   Meanwhile 70 customer pages are asked for at once: 64 wait for Redis
   (each holds memory until it answers), the other 6 are told 503 at once,
   and the 64 are answered once Redis runs again. So are 70 map pages,
   and the 64 that wait share one read of the map's hashes: the same
   answer, not an HGETALL each. A reload while 64 customer pages wait
   answers them 503 "reloading", and the next 64 pages asked wait for
   Redis instead of being refused; after a second reload, with 128 pages
   answered but their replies still to come, the next is refused.
   Methods other than GET, HEAD included, are answered 501.
4. A request larger than any page needs (a 64 KB header) is refused (400)
   without being held.
5. With no file descriptor left, journeyd is sent connections, each
   holding a request unfinished: it stops accepting, saying so once, and
   tries again each second (libevent alone retried at once, warning each
   time, in a busy loop); it serves again once it has descriptors, and
   says so.
6. With 256 file descriptors, clients hold more connections open than
   that, each sent a header line every 2 s: journeyd stops accepting
   (saying why, once) while fewer than 64 are left, so when Redis is
   killed and restarted journeyd connects to it again (it used to take
   connections until none was left, those of the lost Redis connections
   too: "Too many open files" until the clients went). Once they close it
   serves again.
   (Not under valgrind, which answers getrlimit with the limit journeyd
   started with.)
7. A client that sends a header line every 2 s, never ending its request,
   has its connection closed 60 s after it opened (evhttp closes only a
   connection silent for 10 s: it used to be held for good).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import harness

BAD = (["bad-%d\t{\"customer_id\": \"bad-%d\"}" % (i, i) for i in range(7)] +
       ["junk-%d\tnot json at all" % i for i in range(5)])
WANT_REASONS = {"no type": 7, "invalid JSON at byte": 5}
HTTP_FD_RESERVE = 64  # http_server.c
LIFE_S = 60  # HTTP_CONNECTION_LIFE_MS
HELD_FD_LIMIT = 256


def one(samples, name, **labels):
    return samples.get(name, {}).get(frozenset(labels.items()))


class SlowClient:
    """Step 7: a request whose headers never end, a line every 2 s (evhttp
    closes a connection only after 10 s without a byte)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.opened = time.monotonic()
        self.closed_after = None
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        threading.Thread(target=self.trickle, daemon=True).start()

    def trickle(self):
        try:
            while True:
                time.sleep(2)
                self.sock.sendall(b"X-Slow: 1\r\n")
                # closed once journeyd has shut it: its FIN, then a reset
        except OSError:
            self.closed_after = time.monotonic() - self.opened


def hold_descriptors(st, jd, alive):
    """Step 6: more connections held than descriptors, each sent a header
    line now and then (so evhttp's 10 s without a byte never closes them):
    journeyd leaves enough descriptors for Redis to connect again."""
    subprocess.run(["prlimit", "--pid", str(jd.pid),
                    "--nofile=%d:" % HELD_FD_LIMIT], check=True)
    before = st.journeyd_log(jd).count("descriptors left for Redis")
    held = []
    # 16 more than fit, which wait in the listen backlog (128)
    for _ in range(HELD_FD_LIMIT - len(os.listdir("/proc/%d/fd" % jd.pid)) +
                   16):
        held.append(socket.create_connection(("127.0.0.1",
                                              st.http_port), 10))
        held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    stop_trickling = threading.Event()

    def trickle():
        while not stop_trickling.wait(2):
            for c in held:
                c.sendall(b"X-Slow: 1\r\n")
    trickler = harness.Feeder(trickle)
    trickler.start()
    harness.wait_for("accepting paused, descriptors low", lambda:
                     st.journeyd_log(jd).count("descriptors left for "
                                               "Redis") > before, 30)
    paused = st.journeyd_log(jd).count("not accepting until")
    time.sleep(1.5)  # a resume or two: still paused
    fds = len(os.listdir("/proc/%d/fd" % jd.pid))
    assert fds <= HELD_FD_LIMIT - HTTP_FD_RESERVE + 1, fds
    connected = st.journeyd_log(jd).count("redis: connected again")
    st.kill_redis()
    # Redis's descriptors are free now: time for accepting to take them,
    # had it resumed (it did, a second after each pause, before the
    # reserve)
    time.sleep(3)
    st.start_redis()
    harness.wait_for("Redis connected again", lambda: alive() and
                     st.journeyd_log(jd).count("redis: connected again")
                     > connected, 30)
    # paused all along, not a pause and a line for each connection gone
    assert st.journeyd_log(jd).count("not accepting until") == paused, \
        st.journeyd_log(jd)[-3000:]
    stop_trickling.set()
    trickler.join()
    for c in held:
        c.close()
    harness.wait_for("serving again", lambda: st.http_get(
        "/healthz")[0] == 200, 30)


STAGES = ("awareness", "consideration", "decision", "retention", "loyalty")


def main():
    with harness.Stack(harness.build_dir(), "http") as st:
        config = st.write_config(http=True)
        jd = st.start_journeyd(config)

        def alive():
            assert jd.poll() is None, st.journeyd_log(jd)[-3000:]
            return True

        def health(code, reason=""):
            def check():
                status, body = st.http_get("/healthz")
                return alive() and status == code and reason in body
            harness.wait_for("/healthz %d %s" % (code, reason), check, 60)
            return st.http_get("/healthz")[1]

        metrics = st.metrics
        assert health(200) == "ok\n"
        # before anyone is in a stage: each is 0, not a gap in a dashboard
        harness.wait_for("the customer gauge at 0 per stage", lambda: {
            dict(k)["stage"]: v for k, v in
            metrics().get("journeyd_customers", {}).items()} == dict.fromkeys(
                STAGES, 0), show=lambda: metrics().get("journeyd_customers"))
        slow = SlowClient(st.http_port)
        good = st.loadgen("-c", 400, "-n", 5000, "-s", 11)
        st.produce("touchpoints", good + BAD)
        st.wait_applied(len(good) + len(BAD), [jd])
        alerts = st.consume("journey.stage-change")
        stages = dict.fromkeys(STAGES, 0)
        stages.update({k: int(v) for k, v in
                       st.redis.hgetall("journey:stages").items()})
        harness.wait_for("the customer gauge to catch up", lambda: {
            dict(k)["stage"]: v for k, v in
            metrics().get("journeyd_customers", {}).items()} == stages)
        m = metrics()
        got = {
            "applied": one(m, "journeyd_events_total", outcome="applied"),
            "duplicate": one(m, "journeyd_events_total",
                             outcome="duplicate"),
            "dead_lettered": one(m, "journeyd_events_total",
                                 outcome="dead_lettered"),
            "alerts": one(m, "journeyd_alerts_total", type="stage_change"),
            "inflight": one(m, "journeyd_inflight_events"),
            "redis_up": one(m, "journeyd_redis_up"),
            "reloads": one(m, "journeyd_reloads_total"),
        }
        want = {"applied": len(good), "duplicate": 0,
                "dead_lettered": len(BAD), "alerts": len(alerts),
                "inflight": 0, "redis_up": 1, "reloads": 0}
        assert got == want, "metrics %r, expected %r" % (got, want)
        reasons = {dict(k)["reason"]: v for k, v in
                   m["journeyd_dead_letters_total"].items()}
        assert reasons == WANT_REASONS, reasons
        assert len(st.consume("journey.dead-letter")) == len(BAD)
        lags = m.get("journeyd_consumer_lag", {})
        assert {dict(k)["partition"] for k in lags} == {"0", "1", "2", "3"} \
            and set(lags.values()) == {0}, lags
        # both connections carried commands: the reader at least a load
        # per customer (its own PINGs and name-table reads are a handful)
        customers = len({line.split("\t", 1)[0] for line in good})
        assert one(m, "journeyd_redis_roundtrip_seconds_count",
                   connection="reader") >= customers, customers
        for conn in ("writer", "reader"):
            buckets = sorted(
                (float(dict(k)["le"]), v) for k, v in
                m["journeyd_redis_roundtrip_seconds_bucket"].items()
                if dict(k)["connection"] == conn)
            counts = [v for _, v in buckets]
            total = one(m, "journeyd_redis_roundtrip_seconds_count",
                        connection=conn)
            assert counts == sorted(counts) and counts[-1] == total > 0, \
                (conn, buckets)

        # GET alone: libevent 2.1 would answer HEAD with the body, which
        # a client keeping the connection would take for its next reply
        for method in ("HEAD", "POST"):
            for path in ("/healthz", "/map"):
                assert st.http_get(path, method=method)[0] == 501, \
                    (method, path)

        # a customer key holding what no journeyd wrote: the data is at
        # fault, not Redis (it was 502 "bad reply from Redis")
        st.redis("SET", "journey:{not-ours}", "garbage")
        st.redis("SET", "journey:{not-ours-either}:changes", "garbage")
        for cid, text in (("not-ours", "stored state unreadable (not a "
                           "packed journey state)"),
                          ("not-ours-either", "list of changes unreadable "
                           "(WRONGTYPE")):
            status, body = st.http_get("/api/customer/" + cid)
            assert status == 500 and text in body, (cid, status, body)
        # Redis refusing the read is Redis's fault, not the data's
        st.redis("ACL", "SETUSER", "default", "-lrange")
        status, body = st.http_get("/api/customer/" +
                                   good[0].split("\t")[0])
        st.redis("ACL", "SETUSER", "default", "+lrange")
        assert status == 502 and "list of changes refused by Redis " \
            "(NOPERM" in body, (status, body)

        st.kill_redis()
        health(503, "redis down")
        assert one(metrics(), "journeyd_redis_up") == 0
        st.start_redis()
        health(200)

        assert st.broker_command("down -1") == "ok"
        health(503, "kafka unreachable")
        assert st.broker_command("up -1") == "ok"
        health(200)

        st.write_config("health.max_lag = 50\nmax_inflight = 100\n"
                        "redis.timeout_ms = 600000\n", http=True)
        jd.send_signal(signal.SIGHUP)
        harness.wait_for("the reload", lambda: one(
            metrics(), "journeyd_reloads_total") == 1)
        st.signal_redis(signal.SIGSTOP)
        backlog = st.loadgen("-c", 100, "-n", 1000, "-s", 12)
        st.produce("touchpoints", backlog)
        lagging = health(503, "consumer lag")

        def ask(path, n):
            """n requests for path at once: their threads, and the list
            their answers are added to as they come."""
            answers = []
            askers = [threading.Thread(target=lambda: answers.append(
                st.http_get(path, timeout=300))) for _ in range(n)]
            for t in askers:
                t.start()
            return askers, answers

        def seventy_waiting(path):
            """70 requests for path while Redis is stopped: 64 wait, the
            rest are refused at once."""
            askers, answers = ask(path, 70)
            harness.wait_for("the requests beyond 64 refused",
                             lambda: len(answers) >= 6, 10)
            assert all(a == (503, a[1]) and "too many requests waiting" in
                       a[1] for a in answers), answers
            return askers, answers

        def seventy_while_stopped(path):
            """seventy_waiting, then Redis runs again. Answers."""
            askers, answers = seventy_waiting(path)
            st.signal_redis(signal.SIGCONT)
            for t in askers:  # answered once Redis runs again, however late
                t.join()
            assert sorted(a[0] for a in answers) == [200] * 64 + [503] * 6, \
                [a[0] for a in answers]
            return answers

        seventy_while_stopped("/api/customer/%s" % good[0].split("\t")[0])
        health(200)

        # the map: the requests waiting share one read of its hashes
        # (journeyd's own HGETALL of the stage counts adds one every 3 s
        # of the stop)
        def hgetalls():
            stats = st.redis("INFO", "commandstats")
            m = re.search(r"cmdstat_hgetall:calls=(\d+)", stats)
            return int(m.group(1)) if m else 0
        before = hgetalls()
        st.signal_redis(signal.SIGSTOP)
        maps = seventy_while_stopped("/api/map")
        assert len({a[1] for a in maps if a[0] == 200}) == 1
        assert hgetalls() - before <= 32, hgetalls() - before

        # a reload answers the customer pages waiting (503 "reloading"):
        # they then wait only for their replies, and no longer count
        # against the 64 (they did, and the pages asked next were refused
        # until Redis ran), but still hold memory: 128 pages at most, in
        # all. Nothing in flight, or the reload would wait for it, and so
        # for Redis.
        st.wait_applied(len(good) + len(BAD) + len(backlog), [jd])
        harness.wait_for("nothing in flight", lambda: one(
            metrics(), "journeyd_inflight_events") == 0)
        page = "/api/customer/%s" % good[0].split("\t")[0]
        st.signal_redis(signal.SIGSTOP)
        askers = []
        for reload in (1, 2):
            more, answers = seventy_waiting(page)
            askers += more
            jd.send_signal(signal.SIGHUP)
            harness.wait_for("the 64 answered by reload %d" % reload,
                             lambda: len(answers) == 70)
            assert sum(a[0] == 503 and "reloading" in a[1]
                       for a in answers) == 64, answers
        status, body = st.http_get(page)
        assert status == 503 and "too many requests waiting" in body, body
        st.signal_redis(signal.SIGCONT)
        for t in askers:
            t.join()
        harness.wait_for("pages served again",
                         lambda: st.http_get(page)[0] == 200)

        # headers up to 16 KB are taken (a browser's cookies), not more
        for size, want in ((15000, b"HTTP/1.1 200"), (17000, b"HTTP/1.1 400"),
                           (65536, b"HTTP/1.1 400")):
            with socket.create_connection(("127.0.0.1", st.http_port),
                                          10) as c:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                          b"a" * size + b"\r\n\r\n")
                status = c.recv(100).split(b"\r\n")[0]
            assert status.startswith(want), (size, status)

        # no file descriptor left at all (as when something else took
        # them): accepting pauses (one line, not one per try of a loop on
        # the readable socket), and resumes once there are some; the line
        # says "cannot accept: Too many open files", or, should a
        # descriptor have closed meanwhile, that few are left
        with open("/proc/%d/limits" % jd.pid) as f:
            soft = re.search(r"Max open files +(\d+)", f.read()).group(1)
        fds = {int(fd) for fd in os.listdir("/proc/%d/fd" % jd.pid)}
        limit = min(set(range(len(fds) + 1)) - fds)  # the lowest free
        subprocess.run(["prlimit", "--pid", str(jd.pid),
                        "--nofile=%d:" % limit], check=True)
        before = st.journeyd_log(jd).count("not accepting until")
        resumed = st.journeyd_log(jd).count("accepting connections again")
        held = []
        for _ in range(16):
            held.append(socket.create_connection(("127.0.0.1",
                                                  st.http_port), 10))
            held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        harness.wait_for("accepting paused", lambda: st.journeyd_log(jd)
                         .count("not accepting until") > before, 30)
        time.sleep(2.5)
        pauses = st.journeyd_log(jd).count("not accepting until") - before
        assert pauses == 1, "%d pauses logged in 2.5 s" % pauses
        subprocess.run(["prlimit", "--pid", str(jd.pid),
                        "--nofile=%s:" % soft], check=True)
        for c in held:
            c.close()
        harness.wait_for("accepting again", lambda: st.http_get(
            "/healthz")[0] == 200, 30)
        assert st.journeyd_log(jd).count("accepting connections again") == \
            resumed + 1, st.journeyd_log(jd)[-3000:]

        # valgrind answers getrlimit with the limit it started with, not
        # the one prlimit sets: journeyd cannot see its reserve run out
        if not os.environ.get("JOURNEYD_VALGRIND"):
            hold_descriptors(st, jd, alive)

        harness.wait_for("the slow client's connection closed", lambda:
                         alive() and slow.closed_after is not None,
                         LIFE_S + 60)
        assert slow.closed_after >= LIFE_S - 1, slow.closed_after
        assert st.stop_journeyd(jd) == 0, st.journeyd_log(jd)[-3000:]
        print("metrics: applied %d, dead-lettered %d %r, stage-change "
              "alerts %d = topic, customers per stage = Redis, %d Redis "
              "round trips; healthz: redis down, kafka unreachable and %s"
              "all seen and recovered" % (
                  len(good), len(BAD), WANT_REASONS, len(alerts), total,
                  lagging.strip() + " "))


if __name__ == "__main__":
    sys.exit(main())
