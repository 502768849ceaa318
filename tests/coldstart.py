"""Cold start of a release function binary: time from exec to its first
`GET /runtime/invocation/next`, and its resident memory then.

A fake runtime API on loopback stands in for Lambda's; the function's
settings come from the environment (make coldstart passes the local ones).
Usage: python tests/coldstart.py target/release/webhook-receiver [runs]
"""
import os
import socket
import statistics
import subprocess
import sys
import time


def once(binary):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
               AWS_LAMBDA_FUNCTION_NAME="coldstart", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_LOG_STREAM_NAME="s",
               AWS_LAMBDA_LOG_GROUP_NAME="g")
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    srv.settimeout(10)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        proc.kill()
        sys.exit("function never called the runtime API: " + proc.stderr.read().decode())
    first = conn.recv(4096).split(b"\r\n", 1)[0].decode()
    elapsed = (time.perf_counter() - start) * 1000
    with open(f"/proc/{proc.pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    proc.kill()
    proc.wait()
    conn.close()
    srv.close()
    return elapsed, rss, first


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    results = [once(binary) for _ in range(runs)]
    times = sorted(r[0] for r in results)
    print(f"binary            {binary} ({os.path.getsize(binary) / 1e6:.1f} MB)")
    print(f"first request     {results[0][2]}")
    print(f"to first next     median {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms over {runs} starts")
    print(f"RSS then          {statistics.median(r[1] for r in results) / 1024:.1f} MB")


if __name__ == "__main__":
    main()
