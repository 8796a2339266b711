"""celery_conc.py: bench_conc's Celery peer, Celery 5 with the gevent pool.

    /usr/bin/python3 celery_conc.py --url http://127.0.0.1:PORT --tmp DIR
                     [--in-flight N] [--jobs N] [--low-jobs N]

Imported by the worker (celery -A celery_conc), it is the Celery app: one
task, bench.conc.get, which does one HTTP GET of its URL with http.client
(which the gevent pool's monkey-patching makes cooperative) and returns the
body. Run as a program, it is the driver: it starts a private redis-server
(a free 127.0.0.1 port, DIR as its directory, no persistence) as broker and
result backend, and one worker, `celery worker -P gevent -c N`; it keeps N
jobs in flight (one job submitted as soon as one ends) for a warm-up round
of N jobs, then for --jobs jobs, then sends --low-jobs one at a time.
Every result is checked (the delay server answers with the path, /j/K).

It prints the RESULT lines of bench_conc (scenario conc_1000, peer
celery_gevent): jobs/s; the PSS of the worker's processes (the worker and
any child, /proc/PID/smaps_rollup) per job in flight, the largest of the
samples taken every 250 ms of the measured run while N jobs were in flight;
and the p50 latency a job adds over the server's own (--backend-ms,
measured by bench_conc) at one job at a time. A "SKIPPED" line instead, and exit status 0, if Celery, gevent, the
redis client or redis-server is missing. Exit status 1 if a result was
wrong or missing. Everything it starts is stopped by pid when it ends (and
killed by the kernel if the driver dies first: PR_SET_PDEATHSIG).
CELERY_CONC_LOGLEVEL=INFO logs every task in DIR/worker.log.
"""
import os
import sys
import http.client
import urllib.parse

BROKER = os.environ.get("CELERY_CONC_BROKER", "redis://127.0.0.1:6379/0")
SCENARIO, PEER, DELAY_MS = "conc_1000", "celery_gevent", 100


def _get(url):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", u.path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError("GET %s: status %d" % (url, resp.status))
    return body.decode()


if __name__ != "__main__":
    # The worker's side: the app and its task.
    from celery import Celery

    app = Celery("celery_conc", broker=BROKER, backend=BROKER)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name="bench.conc.get")
    def get(url):
        return _get(url)


def result(metric, value, unit):
    print("RESULT scenario=%s peer=%s metric=%s value=%.6g unit=%s" % (SCENARIO, PEER, metric, value, unit),
          flush=True)


def skipped(why):
    print("SKIPPED scenario=%s peer=%s reason=%s" % (SCENARIO, PEER, why), flush=True)
    sys.exit(0)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def die_with_parent():
    """For the children: SIGKILL when the driver dies, however it dies."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop(proc, grace=3):
    """SIGTERM, then SIGKILL after grace seconds; reaps it (by its pid)."""
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tree(pid):
    """pid and its descendants, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(pids):
    """CPU seconds (user + system) the processes have used."""
    s = 0.0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            s += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return s


def pss_kb(pids):
    kb = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        kb += int(line.split()[1])
                        break
        except OSError:
            pass
    return kb


def main():
    import argparse
    import gc
    import importlib.util
    import shutil
    import signal
    import subprocess
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the delay server, http://127.0.0.1:PORT")
    ap.add_argument("--tmp", required=True, help="a directory of its own (redis' files, logs)")
    ap.add_argument("--in-flight", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--low-jobs", type=int, default=50)
    ap.add_argument("--backend-ms", type=float, default=DELAY_MS,
                    help="the server's own p50 to a plain client: what a job adds is over it")
    args = ap.parse_args()

    # Looked for, not imported: with gevent in sys.modules, Celery's client
    # would drain results in greenlets (celery.utils.threads'
    # detect_environment), which never run in this unpatched process.
    missing = [m for m in ("celery", "gevent", "redis") if importlib.util.find_spec(m) is None]
    if missing:
        skipped("not installed: %s (python3-celery, python3-gevent, python3-redis)" % ", ".join(missing))
    import celery
    redis_server = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                                      if os.access("/usr/bin/redis-server", os.X_OK) else None)
    if redis_server is None:
        skipped("not installed: redis-server")

    # SIGTERM (bench_conc's cleanup) unwinds through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.makedirs(args.tmp, exist_ok=True)
    redis_proc = worker = None
    errors = 0
    try:
        for _ in range(5):
            port = free_port()
            with open(os.path.join(args.tmp, "redis.log"), "a") as log:
                redis_proc = subprocess.Popen(
                    [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--dir", args.tmp,
                     "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent)
            end = time.monotonic() + 10
            while not port_open(port) and redis_proc.poll() is None and time.monotonic() < end:
                time.sleep(0.02)
            if redis_proc.poll() is None and port_open(port):
                break
            stop(redis_proc)
            redis_proc = None
        if redis_proc is None:
            raise RuntimeError("redis-server did not start (%s/redis.log)" % args.tmp)
        broker = "redis://127.0.0.1:%d/0" % port
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, CELERY_CONC_BROKER=broker, PYTHONPATH=here, PYTHONDONTWRITEBYTECODE="1")
        with open(os.path.join(args.tmp, "worker.log"), "a") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "celery_conc", "worker", "-P", "gevent",
                 "-c", str(args.in_flight), "-n", "bench_conc@%h",
                 "--loglevel", os.environ.get("CELERY_CONC_LOGLEVEL", "WARNING"),
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=args.tmp, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent)

        app = celery.Celery("celery_conc_client", broker=broker, backend=broker)
        app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
        task = app.signature("bench.conc.get")
        consumer = app.backend.result_consumer
        done = []  # (k, the result or an exception), filled by the callbacks
        live = {}  # k: its AsyncResult, until its result came
        job_no = [0]

        def submit(t0s=None):
            k = job_no[0]
            job_no[0] += 1
            if t0s is not None:
                t0s[k] = time.monotonic()
            # The backend subscribes to the result before the job is sent
            # (on_task_call). The AsyncResult is kept until its result has
            # come: its __del__ unsubscribes.
            r = live[k] = task.apply_async(args=["%s/j/%d" % (args.url, k)])
            r.then(lambda res, k=k: done.append((k, res.result)),
                   on_error=lambda exc, k=k: done.append((k, exc)))
            return k

        def run(n, batch, timeout, sample=None, t0s=None, lat=None):
            """n jobs, batch in flight at once (refilled as they end).
            Returns (seconds, correct results)."""
            nonlocal errors
            t0 = time.monotonic()
            first = job_no[0]
            sent = got = ok = 0
            next_sample = t0 + 0.1
            while sent < min(batch, n):
                submit(t0s)
                sent += 1
            while got < n:
                if time.monotonic() - t0 > timeout:
                    print("celery_conc: %d of %d results after %d s" % (got, n, timeout), file=sys.stderr)
                    errors += n - got
                    break
                consumer.drain_events(timeout=0.05)
                while done:
                    k, res = done.pop()
                    live.pop(k, None)
                    got += 1
                    if lat is not None:
                        lat.append((time.monotonic() - t0s[k]) * 1000)
                    if res == "/j/%d" % k and first <= k < first + n:
                        ok += 1
                    else:
                        errors += 1
                        if errors <= 5:
                            print("celery_conc: job %d: %r" % (k, res), file=sys.stderr)
                    if sent < n:
                        submit(t0s)
                        sent += 1
                if sample is not None and time.monotonic() >= next_sample:
                    next_sample += 0.25
                    if sent - got == batch:
                        sample.append(pss_kb(tree(worker.pid)))
            return time.monotonic() - t0, ok

        # Warm-up, as bench_conc's: the worker up, every greenlet and
        # connection made (the first round waits for the worker's start).
        _, ok = run(args.in_flight, args.in_flight, 60)
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        if ok != args.in_flight:
            raise RuntimeError("the warm-up round: %d of %d results correct" % (ok, args.in_flight))
        samples = []
        cpu0, own0 = cpu_s(tree(worker.pid)), os.times()
        secs, ok = run(args.jobs, args.in_flight, max(60, args.jobs / 20), sample=samples)
        cpu1, own1 = cpu_s(tree(worker.pid)), os.times()
        jobs_per_s = ok / secs
        t0s, lat = {}, []
        run(args.low_jobs, 1, 120, t0s=t0s, lat=lat)
        lat.sort()
        result("jobs_per_s", jobs_per_s, "jobs/s")
        if samples:
            result("pss_per_job_kib", max(samples) / args.in_flight, "KiB")
        if lat:
            result("added_latency_ms", lat[len(lat) // 2] - args.backend_ms, "ms")
        print("  %-28s %9.0f jobs/s  %8.1f KiB per job in flight  +%.3f ms at one job (%d of %d correct, %d errors)"
              % (PEER, jobs_per_s, max(samples) / args.in_flight if samples else -1.0,
                 lat[len(lat) // 2] - args.backend_ms if lat else -1.0, ok, args.jobs, errors), flush=True)
        print("  (CPU over the measured run: the worker %.0f %%, this client %.0f %% of a core)"
              % (100 * (cpu1 - cpu0) / secs, 100 * (own1.user + own1.system - own0.user - own0.system) / secs),
              flush=True)
        if not samples:
            print("celery_conc: no PSS sample with %d jobs in flight" % args.in_flight, file=sys.stderr)
    except BaseException:
        errors += 1
        raise
    finally:
        stop(worker)
        # The client's AsyncResults unsubscribe when freed (they are in
        # reference cycles): before redis is gone.
        live = done = None
        gc.collect()
        stop(redis_proc)
        if errors:
            for name in ("worker.log", "redis.log"):
                try:
                    with open(os.path.join(args.tmp, name)) as f:
                        tail = f.readlines()[-20:]
                except OSError:
                    continue
                sys.stderr.write("celery_conc: the end of %s:\n%s" % (name, "".join(tail)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
