"""The reference the stage is measured against: a gevent pool POSTing the same bodies through
urllib3's `urlopen` (the obvious way), as fast as it can. Prints one JSON line.

    python -m bench.webhook.urlopen_ceiling --url http://127.0.0.1:18895/hook --greenlets 32
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import gevent.pool  # noqa: E402
import urllib3  # noqa: E402

BODY = (b'{"ts":1732780000000,"topic":"bench/p/000","retain":false,"qos":0,"action":"message_publish",'
        b'"from_username":"undefined","from_client_id":"bench-p0","payload":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}')


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--greenlets", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    pool = urllib3.PoolManager(maxsize=args.greenlets, block=True, retries=False).connection_from_url(args.url)
    path = urllib3.util.parse_url(args.url).request_uri
    done = [0]
    deadline = time.monotonic() + args.seconds

    def worker():
        while time.monotonic() < deadline:
            response = pool.urlopen("POST", path, body=BODY, headers={"Content-Type": "application/json"},
                                    retries=False, redirect=False, assert_same_host=False, preload_content=True)
            if response.status < 300:
                done[0] += 1

    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    workers = gevent.pool.Pool(args.greenlets)
    for _ in range(args.greenlets):
        workers.spawn(worker)
    workers.join()
    ru1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    print(json.dumps({"posts_per_s": round(done[0] / (t1 - t0)), "cpu": round(cpu / (t1 - t0), 2),
                      "cpu_us_per_post": round(cpu / max(done[0], 1) * 1e6)}))


if __name__ == "__main__":
    main()
