#!/usr/bin/env python3
"""Load on a running `genlab serve` (bench/studio.sh starts it): decode latency one request at a
time (what a slider does), 200 decodes fired at once (each its own connection), and a burst of
uploads to encode; the server's resident memory before and after. Prints one JSON line.

usage: studio_load.py HOST:PORT SERVER_PID UPLOAD.png [--latent 20] [--run 0]
"""
import argparse
import http.client
import json
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def post(addr, path, body, ctype, conn=None):
    c = conn or http.client.HTTPConnection(addr, timeout=300)
    t = time.perf_counter()
    c.request("POST", path, body=body, headers={"content-type": ctype})
    r = c.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t) * 1e3
    if conn is None:
        c.close()
    return r.status, data, ms


def pct(v, q):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * q))], 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("pid", type=int)
    ap.add_argument("upload")
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--run", type=int, default=0)
    ap.add_argument("--sequential", type=int, default=500)
    ap.add_argument("--concurrent", type=int, default=200)
    ap.add_argument("--uploads", type=int, default=50)
    a = ap.parse_args()
    decode = f"/api/runs/{a.run}/decode"
    body = lambda i: json.dumps({"z": [((i * 37 + j * 11) % 61) / 10 - 3 for j in range(a.latent)]})
    out = {"rss_start_mib": round(rss_mib(a.pid), 1)}

    # One at a time on one kept-alive connection, as the page's slider does.
    conn = http.client.HTTPConnection(a.addr, timeout=60)
    for i in range(20):  # warm-up (loads the model)
        post(a.addr, decode, body(i), "application/json", conn)
    seq = []
    for i in range(a.sequential):
        s, data, ms = post(a.addr, decode, body(i), "application/json", conn)
        assert s == 200 and data[:4] == b"\x89PNG", (s, data[:200])
        seq.append(ms)
    conn.close()
    out["rss_warm_mib"] = round(rss_mib(a.pid), 1)  # model and map loaded
    out.update(decode_p50_ms=pct(seq, 0.5), decode_p99_ms=pct(seq, 0.99), decode_n=len(seq))

    # Many at once, each on its own connection, started together.
    res, gate = [None] * a.concurrent, threading.Barrier(a.concurrent)

    def one(i):
        gate.wait()
        res[i] = post(a.addr, decode, body(i), "application/json")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.concurrent)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = sum(1 for s, d, _ in res if s == 200 and d[:4] == b"\x89PNG")
    lat = [ms for _, _, ms in res]
    out.update(concurrent=a.concurrent, concurrent_ok=ok, concurrent_p50_ms=pct(lat, 0.5),
               concurrent_p99_ms=pct(lat, 0.99), concurrent_wall_s=round(wall, 3))

    # A burst of uploads to encode, all at once.
    img = open(a.upload, "rb").read()
    ures = [None] * a.uploads
    ugate = threading.Barrier(a.uploads)

    def up(i):
        ugate.wait()
        ures[i] = post(a.addr, f"/api/runs/{a.run}/encode", img, "image/png")

    threads = [threading.Thread(target=up, args=(i,)) for i in range(a.uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    uok = sum(1 for s, d, _ in ures if s == 200 and "z" in json.loads(d))
    out.update(uploads=a.uploads, uploads_ok=uok, upload_p50_ms=pct([m for *_, m in ures], 0.5),
               upload_p99_ms=pct([m for *_, m in ures], 0.99))
    s, _, ms = post(a.addr, decode, body(1), "application/json")
    out.update(after_status=s, after_ms=round(ms, 2), rss_end_mib=round(rss_mib(a.pid), 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
