"""test_config_check.py: `journeyd -n` accepts the shipped example config
and refuses broken ones with FILE:LINE: what is wrong, kafka.* lines that
clash with the clients journeyd makes included; a start refuses them with
the same words before it opens anything."""
import os
import subprocess
import sys
import tempfile

import harness

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def check(journeyd, path, flags=("-n",)):
    try:
        r = subprocess.run([journeyd, *flags, "-f", path],
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, "still running after 30 s"
    return r.returncode, r.stderr.strip()


def main():
    journeyd = os.path.join(os.path.abspath(harness.build_dir()), "journeyd")
    rc, err = check(journeyd, os.path.join(SRC, "config", "journeyd.conf"))
    assert rc == 0 and "configuration OK" in err, err
    broken = [
        ("group = a\n\nredis = db.example:6379\n", 3, "not an IP address"),
        ("kafka.fetch.wait.max.ms = often\n", 1, "Invalid value"),
        ("stage.a = x\nstage.b = x\n", 2, "already leads to stage 'a'"),
        ("# fine\nwhat is this\n", 2, "expected 'key = value'"),
        # each line is valid alone; with the idempotent producer journeyd
        # runs, librdkafka would refuse the first at start
        ("kafka.producer.acks = 1\nkafka.linger.ms = 2\n", 2,
         "kafka.* lines make no producer: `acks` must be set to `all`"),
    ]
    with tempfile.TemporaryDirectory() as d:
        for i, (text, line, what) in enumerate(broken):
            path = os.path.join(d, "bad%d.conf" % i)
            with open(path, "w") as f:
                f.write(text)
            for flags in (("-n",), ("-d",)):
                rc, err = check(journeyd, path, flags)
                assert rc == 1, "%s accepted a broken config: %r (%s)" % (
                    flags[0], text, err)
                # -d may log (at debug level) before the error
                assert any(l.startswith("%s:%d: " % (path, line)) and
                           what in l for l in err.splitlines()), \
                    "%s: got %r" % (flags[0], err)
    print("example config accepted; %d broken configs refused with "
          "file:line, by -n and at start" % len(broken))


if __name__ == "__main__":
    sys.exit(main())
