"""test_systemd_unit.py: the systemd unit is valid, hardened, and installed
where it points.

- `systemd-analyze verify` accepts systemd/journeyd.service (a copy whose
  ExecStart is the binary in the build directory, so the path exists),
  without a warning about it;
- `systemd-analyze security --offline=true` rates its exposure 2.0 or
  better (lower is better);
- it is Type=notify with a watchdog, reloads with SIGHUP, restarts on
  failure, and gives a stop more time than the default drain deadline;
- `cmake --install` (into a DESTDIR) puts the binary, the unit and the
  default config in place, the installed unit names the installed binary
  and config, journeyd and journeyctl read that config when no -f names
  another, and a second install keeps an edited config.
Skipped (77) where systemd-analyze is absent.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(SOURCE, "systemd", "journeyd.service")
EXPOSURE_MAX = 2.0


def directives(text):
    found = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            found.setdefault(k.strip(), []).append(v.strip())
    return found


def seconds(v):
    m = re.fullmatch(r"(\d+)\s*(s|min)?", v)
    assert m, "cannot read the time span %r" % v
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def default_drain_ms():
    with open(os.path.join(SOURCE, "config", "journeyd.conf")) as f:
        return int(re.search(r"^drain_timeout_ms = (\d+)$", f.read(),
                             re.M).group(1))


def check_install(build, tmp):
    stage = os.path.join(tmp, "stage")
    env = dict(os.environ, DESTDIR=stage)
    cmake = shutil.which("cmake")
    subprocess.run([cmake, "--install", build], env=env, check=True,
                   capture_output=True)
    files = {}
    for d, _, names in os.walk(stage):
        for n in names:
            files[n] = os.path.join(d, n)[len(stage):]
    for n in ("journeyd", "journeyctl", "journeyd.service",
              "journeyd.conf"):
        assert n in files, "cmake --install did not install %s: %r" % (
            n, files)
    assert files["journeyd"].endswith("/sbin/journeyd"), files
    assert files["journeyd.service"].endswith(
        "/lib/systemd/system/journeyd.service"), files
    with open(stage + files["journeyd.service"]) as f:
        start = directives(f.read())["ExecStart"][0].split()
    assert start == [files["journeyd"], "-f", files["journeyd.conf"]], start
    # without -f, both programs read the config where it was installed
    for program in ("journeyd", "journeyctl"):
        with open(stage + files[program], "rb") as f:
            assert files["journeyd.conf"].encode() + b"\0" in f.read(), \
                "%s does not default to %s" % (program, files["journeyd.conf"])
    conf = stage + files["journeyd.conf"]
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    subprocess.run([cmake, "--install", build], env=env, check=True,
                   capture_output=True)
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n"), \
            "a second install overwrote the config"
    return files


def main():
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze is not installed: skipped")
        return harness.SKIP
    build = os.path.abspath(harness.build_dir())
    with open(UNIT) as f:
        text = f.read()
    d = directives(text)
    assert d["Type"] == ["notify"], d["Type"]
    assert seconds(d["WatchdogSec"][0]) > 0
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"], d["ExecReload"]
    assert d["Restart"] == ["on-failure"], d["Restart"]
    stop = seconds(d["TimeoutStopSec"][0])
    assert stop * 1000 > default_drain_ms(), \
        "TimeoutStopSec=%d s is not longer than the drain deadline" % stop

    tmp = tempfile.mkdtemp(prefix="systemd-unit-")
    try:
        copy = os.path.join(tmp, "journeyd.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/sbin/journeyd",
                                 os.path.join(build, "journeyd")))
        r = subprocess.run(["systemd-analyze", "verify", copy],
                           capture_output=True, text=True)
        # units it pulls in (redis-server.service) are not ours to judge
        ours = [l for l in r.stderr.splitlines() if "journeyd" in l]
        assert r.returncode == 0 and not ours, \
            "systemd-analyze verify: %d\n%s" % (r.returncode, r.stderr)
        r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                            copy], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for journeyd\.service: "
                      r"([\d.]+)", r.stdout)
        assert m, "no exposure level in:\n" + r.stdout + r.stderr
        exposure = float(m.group(1))
        assert exposure <= EXPOSURE_MAX, \
            "exposure %.1f is above %.1f:\n%s" % (exposure, EXPOSURE_MAX,
                                                   r.stdout)
        files = check_install(build, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("unit verified; security exposure %.1f (at most %.1f); "
          "TimeoutStopSec %d s > drain %d s; installed %s, %s, %s" % (
              exposure, EXPOSURE_MAX, stop, default_drain_ms() // 1000,
              files["journeyd"], files["journeyd.service"],
              files["journeyd.conf"]))


if __name__ == "__main__":
    sys.exit(main())
