"""A link scanner's burst at the unsubscribe service (issue 17): many GETs of real links at once,
with real one-click POSTs mixed in, against the standalone server as deployed
(``python -m billing_digest.unsubscribe.server``, its own processes) on a billing database of
``--users`` users.

    python -m bench.unsubscribe_burst --gets 6000 --concurrency 200 --posts 100 [--workers N] [--tag T]
    python -m bench.unsubscribe_burst --client wrk --seconds 30 --concurrency 200 --posts 100 ...

Prints and writes ``bench/results/unsubscribe-burst[-T].json``: requests/s, latency percentiles of
the GETs, errors (any non-200 or transport error), and the POST check: every POSTed user turned off
and recorded exactly once in ``digest.unsubscribes`` (each is POSTed twice, the second during the
burst too), and no GET changed anything (the other users are all still on).

Two clients: ``httpx`` (default; Python, asyncio: a fixed number of requests, every latency kept,
but the client burns as much CPU as the server on a shared 2-core machine) and ``wrk`` (Debian's
``wrk``, C: ``--concurrency`` connections for ``--seconds``, cycling through the same list of GETs
and POSTs, so every POST is repeated many times; latency percentiles from wrk itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from bench.common import RESULTS, ROOT, server_dsn
from billing_digest import NOTIFICATION_KIND, sql
from billing_digest.unsubscribe.tokens import make_token
from devtools import embedded_pg

SECRET = "bench-unsubscribe-secret-0123456789"
DB = "bench_unsubscribe"


def seed(users: int) -> str:
    """A fresh billing database with ``users`` users, all with the alert on."""
    dsn = embedded_pg.ensure_database(server_dsn(), DB, recreate=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql.apply_schema(conn)
        conn.execute("INSERT INTO billing.users (id, name, email) SELECT g, 'Usuária ' || g, 'u' || g || '@x.com.br' "
                     "FROM generate_series(1, %(n)s) g", {"n": users})
        conn.execute("INSERT INTO billing.notification_preferences (user_id, kind, enabled) "
                     "SELECT g, %(kind)s, true FROM generate_series(1, %(n)s) g",
                     {"n": users, "kind": NOTIFICATION_KIND})
    return dsn


def start_server(dsn: str, port: int, workers: int | None) -> subprocess.Popen:
    env = dict(os.environ, BILLING_DIGEST_DSN=dsn, BILLING_DIGEST_UNSUBSCRIBE_SECRET=SECRET,
               UNSUBSCRIBE_PORT=str(port), PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]))
    if workers:
        env["UNSUBSCRIBE_WORKERS"] = str(workers)
    proc = subprocess.Popen([sys.executable, "-m", "billing_digest.unsubscribe.server"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/notificacoes/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the unsubscribe server did not answer /healthz within 60 s")


async def burst(base: str, get_users: list[int], post_users: list[int], concurrency: int) -> dict:
    expires = int(time.time()) + 86400
    link = {u: f"{base}?token={make_token(SECRET, u, NOTIFICATION_KIND, expires)}" for u in set(get_users + post_users)}
    # Each POSTed user twice, spread through the burst (a mail client retrying, a user clicking twice).
    jobs = [("GET", u) for u in get_users] + [("POST", u) for u in post_users * 2]
    random.Random(7).shuffle(jobs)
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: dict[str, list[float]] = {"GET": [], "POST": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker() -> None:
            while not queue.empty():
                method, user = queue.get_nowait()
                started = time.perf_counter()
                try:
                    if method == "GET":
                        r = await client.get(link[user])
                    else:
                        r = await client.post(link[user], content=b"List-Unsubscribe=One-Click",
                                              headers={"Content-Type": "application/x-www-form-urlencoded"})
                    if r.status_code != 200:
                        errors.append(f"{method} {r.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(f"{method} {type(exc).__name__}")
                latencies[method].append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "latencies": latencies, "errors": errors}


WRK_SCRIPT = """
local requests, n = {}, 0
for line in io.lines(os.getenv("BURST_REQUESTS")) do
  local method, path = line:match("^(%u+) (.+)$")
  n = n + 1
  if method == "POST" then
    requests[n] = wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"},
                             "List-Unsubscribe=One-Click")
  else
    requests[n] = wrk.format("GET", path)
  end
end
local i = 0
request = function() i = i % n + 1; return requests[i] end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "seconds": %.3f, "non_2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_ms": %.1f, "p90_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def run_wrk(port: int, jobs: list[tuple[str, str]], concurrency: int, seconds: int) -> dict:
    """``wrk`` (C, epoll) cycling through ``jobs`` with ``concurrency`` connections for ``seconds``."""
    tmp = RESULTS.parent / ".data"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "burst-requests.txt").write_text("".join(f"{m} {path}\n" for m, path in jobs))
    (tmp / "burst.lua").write_text(WRK_SCRIPT)
    done = subprocess.run(["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "30s",
                           "-s", str(tmp / "burst.lua"), f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                          env=dict(os.environ, BURST_REQUESTS=str(tmp / "burst-requests.txt")), check=True)
    [line] = [x for x in done.stdout.splitlines() if x.startswith("WRK ")]
    return json.loads(line[4:])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def check_posts(dsn: str, post_users: list[int], users: int) -> dict:
    with psycopg.connect(dsn) as conn:
        recorded = dict(conn.execute("SELECT user_id, count(*) FROM digest.unsubscribes GROUP BY 1").fetchall())
        off = {u for (u,) in conn.execute("SELECT user_id FROM billing.notification_preferences "
                                          "WHERE kind = %s AND NOT enabled", (NOTIFICATION_KIND,))}
    return {"posted_users": len(post_users), "recorded_once": sum(recorded.get(u) == 1 for u in post_users),
            "recorded_rows": sum(recorded.values()), "turned_off": len(off),
            "all_applied_once": off == set(post_users) and all(recorded.get(u) == 1 for u in post_users)
            and sum(recorded.values()) == len(post_users), "users": users}


def wrk_burst(args: argparse.Namespace, get_users: list[int], post_users: list[int]) -> dict:
    expires = int(time.time()) + 86400
    jobs = [("GET", u) for u in get_users] + [("POST", u) for u in post_users * 2]
    random.Random(7).shuffle(jobs)
    paths = [(m, f"/notificacoes/cancelar?token={make_token(SECRET, u, NOTIFICATION_KIND, expires)}") for m, u in jobs]
    out = run_wrk(args.port, paths, args.concurrency, args.seconds)
    errors = out["non_2xx"] + out["connect"] + out["read"] + out["write"] + out["timeout"]
    return {"tag": args.tag, "client": "wrk", "concurrency": args.concurrency, "seconds": args.seconds,
            "workers": args.workers or "server default", "requests": out["requests"],
            "requests_per_s": round(out["requests"] / out["seconds"], 1),
            "p50_ms": out["p50_ms"], "p90_ms": out["p90_ms"], "p99_ms": out["p99_ms"], "max_ms": out["max_ms"],
            "errors": errors, "error_kinds": {k: out[k] for k in ("non_2xx", "connect", "read", "write", "timeout")},
            "list_length": len(paths), "list_traversed": out["requests"] >= len(paths),
            "note": "latencies of all requests (GETs and POSTs mixed as listed); one wrk thread, so the list "
                    "is walked in order from its start (every POST sent when list_traversed)"}


def summarize(run: dict, args: argparse.Namespace) -> dict:
    gets = run["latencies"]["GET"]
    total = len(gets) + len(run["latencies"]["POST"])
    return {
        "tag": args.tag, "gets": len(gets), "posts": len(run["latencies"]["POST"]), "concurrency": args.concurrency,
        "workers": args.workers or "server default", "requests_per_s": round(total / run["elapsed_s"], 1),
        "get_p50_ms": round(statistics.median(gets) * 1000, 1), "get_p90_ms": round(percentile(gets, 90) * 1000, 1),
        "get_p99_ms": round(percentile(gets, 99) * 1000, 1), "get_max_ms": round(max(gets) * 1000, 1),
        "post_p99_ms": round(percentile(run["latencies"]["POST"], 99) * 1000, 1) if run["latencies"]["POST"] else None,
        "errors": len(run["errors"]), "error_kinds": sorted(set(run["errors"]))[:10], "client": "httpx",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--posts", type=int, default=100, help="distinct users POSTed (twice each) during the burst")
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=None, help="UNSUBSCRIBE_WORKERS (default: the server's)")
    parser.add_argument("--port", type=int, default=8197)
    parser.add_argument("--tag", default="")
    parser.add_argument("--client", choices=("httpx", "wrk"), default="httpx")
    parser.add_argument("--seconds", type=int, default=30, help="wrk: how long the burst lasts")
    args = parser.parse_args()
    load = os.getloadavg()
    dsn = seed(args.users)
    rng = random.Random(42)
    post_users = rng.sample(range(1, args.users + 1), args.posts)
    get_users = [rng.randint(1, args.users) for _ in range(args.gets)]
    proc = start_server(dsn, args.port, args.workers)
    try:
        if args.client == "wrk":
            result = wrk_burst(args, get_users, post_users)
        else:
            run = asyncio.run(burst(f"http://127.0.0.1:{args.port}/notificacoes/cancelar", get_users, post_users,
                                    args.concurrency))
            result = summarize(run, args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result.update(check_posts(dsn, post_users, args.users), load_before=load, cpus=os.cpu_count(),
                  command="python -m bench.unsubscribe_burst " + " ".join(sys.argv[1:]),
                  at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    RESULTS.mkdir(exist_ok=True)
    out = Path(RESULTS / f"unsubscribe-burst{'-' + args.tag if args.tag else ''}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
