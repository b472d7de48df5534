"""test_redis_auth.py: journeyd on a Redis it reaches over a unix socket,
must AUTH to, and uses in database 3 (redis = unix:PATH, redis.password,
redis.db), as a Redis user allowed only the commands the README says it
needs. Once that user may no longer run CLIENT KILL, journeyd says it
cannot fence off its previous connection when it reconnects.

Both of journeyd's connections, the writer and the reader of the loads,
must be set up alike: were the reader left in database 0, a customer's
second event would load nothing, and its write, expecting a new customer,
would be refused as stale again and again. So each customer gets two
events, in two batches; then every state is in database 3 (checked with
journeyctl, over the same settings), database 0 holds nothing, and both
of journeyd's connections sit in database 3.

This Redis also runs as journeyd's guarantees do not allow: without its
append-only file, and free to evict keys. journeyd must say both when it
connects; started again once Redis is set as they need (appendonly yes,
noeviction), it must say neither.
"""
import os
import subprocess
import sys

import harness

PASSWORD = "s3cret-for-the-test"
DB = 3
CUSTOMERS = ("auth-a", "auth-b", "auth-c")
NO_AOF = "redis: appendonly is off"
EVICTING = "redis: maxmemory-policy is allkeys-lru"
# what the README says the Redis user needs, and nothing more
JOURNEYD_COMMANDS = ("+@string", "+@hash", "+@list", "+@sortedset",
                     "+client", "+info", "+script", "+evalsha", "+ping",
                     "+select", "+del", "+expire", "+time", "+type")


def main():
    with harness.Stack(harness.build_dir(), "redisauth") as st:
        sock = os.path.join(st.tmp, "auth-redis.sock")
        st.start_other_redis(
            "auth-redis", "--port", "0", "--unixsocket", sock,
            "--unixsocketperm", "700", "--requirepass", PASSWORD,
            "--appendonly", "no", "--maxmemory", "1gb",
            "--maxmemory-policy", "allkeys-lru")

        def cli(*args, db=DB, user="admin"):
            return subprocess.run(
                ["redis-cli", "-s", sock, "--user", user, "--pass",
                 PASSWORD, "--no-auth-warning", "-n", str(db)] +
                [str(a) for a in args], capture_output=True, text=True,
                timeout=30, check=True).stdout

        harness.wait_for("redis-server on its socket",
                         lambda: os.path.exists(sock) and
                         cli("PING", user="default").strip() == "PONG", 20)
        cli("ACL", "SETUSER", "admin", "on", ">" + PASSWORD, "~*", "&*",
            "+@all", user="default")
        cli("ACL", "SETUSER", "default", "-@all", *JOURNEYD_COMMANDS)
        # the harness's config names its own Redis: this one names ours
        config = os.path.join(st.tmp, "auth.conf")
        with open(st.write_config()) as f, open(config, "w") as out:
            out.writelines(l for l in f if not l.startswith("redis "))
            out.write("redis = unix:%s\nredis.password = %s\n"
                      "redis.db = %d\n" % (sock, PASSWORD, DB))
        jd = st.start_journeyd(config)

        def applied():
            assert jd.poll() is None, st.journeyd_log(jd)[-2000:]
            lines = cli("HVALS", "journey:offsets").split()
            return sum(int(v) + 1 for v in lines)

        for i, etype in enumerate(("ad_click", "product_view")):
            st.produce_events([{"customer_id": cid, "type": etype,
                                "event_id": "%s-%d" % (cid, i),
                                "ts": "2026-03-01T10:00:%02dZ" % i}
                               for cid in CUSTOMERS])
            harness.wait_for("events applied in database %d" % DB,
                             lambda: applied() >= 3 * (i + 1), 60)

        for cid in CUSTOMERS:
            out = subprocess.run([st.bin["journeyctl"], "-f", config,
                                  "customer", cid], capture_output=True,
                                 text=True, timeout=30, check=True).stdout
            assert "consideration" in out and "events        2," in out, out
        assert cli("DBSIZE", db=0).strip() == "0", cli("KEYS", "*", db=0)

        def journeyd_clients():	# journeyctl's are gone once Redis sees it
            return [l for l in cli("CLIENT", "LIST").splitlines()
                    if "cmd=client|list" not in l]
        harness.wait_for("journeyd's two connections alone",
                         lambda: len(journeyd_clients()) == 2, 10)
        assert all(" db=%d " % DB in l for l in journeyd_clients()), \
            journeyd_clients()
        log = st.journeyd_log(jd)
        assert "stale" not in log and "someone else" not in log, log[-2000:]
        for warning in (NO_AOF, EVICTING):
            assert warning in log, log[-2000:]

        # journeyd's connections killed: back on the same server, it
        # fences off its previous writer, which this user may no longer
        # do: said, not passed over as a client already gone
        cli("ACL", "SETUSER", "default", "-client|kill")
        before = st.journeyd_log(jd).count("redis: connected again")
        cli("CLIENT", "KILL", "USER", "default")
        harness.wait_for("journeyd connected again",
                         lambda: st.journeyd_log(jd).count(
                             "redis: connected again") > before, 30)
        log = st.journeyd_log(jd)
        assert "cannot fence off our previous connection, whose commands " \
            "may still run: NOPERM" in log, log[-2000:]
        assert st.stop_journeyd(jd) == 0, log[-2000:]

        cli("CONFIG", "SET", "appendonly", "yes")
        cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
        jd = st.start_journeyd(config)
        harness.wait_for("journeyd connected again",
                         lambda: "redis: connected" in
                         st.journeyd_log(jd), 30)
        log = st.journeyd_log(jd)
        assert st.stop_journeyd(jd) == 0, log[-2000:]
        for warning in (NO_AOF, EVICTING):
            assert warning not in log, log[-2000:]
        print("journeyd over a unix socket with AUTH in database %d: %d "
              "customers of 2 events each, both connections in database "
              "%d, database 0 empty; appendonly off and allkeys-lru "
              "warned of, and not once set right" % (DB, len(CUSTOMERS),
                                                     DB))


if __name__ == "__main__":
    sys.exit(main())
