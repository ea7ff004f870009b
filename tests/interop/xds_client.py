"""A stock gRPC client balancing on its own side over xDS: Python grpcio's built-in xDS resolver
(`xds:///NAME`, bootstrap from GRPC_XDS_BOOTSTRAP), knowing nothing of zoorpc. Message types
come from server reflection (through the same xDS channel), as in grpc_client.py.

  xds_client.py calls TARGET N INTERVAL_MS
      waits for the channel, then starts N SayHello calls, one every INTERVAL_MS (not waiting
      for the one before), printing `ok <provider> <unix ms>` or `err <CODE> <unix ms>
      <details>` as each ends, then `calls=N ok=N failed=N`
  xds_client.py once TARGET
      one call without waiting for the channel: `ok <provider>` or `err <CODE> <seconds taken>`
"""

import sys
import threading
import time

import grpc

from grpc_client import say, say_hello_stub


def now_ms():
    return int(time.time() * 1000)


def calls(target, count, interval_ms):
    """Starts a call every interval_ms without waiting for the one before (a slow provider has
    several at once, as under load), printing each as it ends."""
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        _, request_class, call = say_hello_stub(channel)
        lock = threading.Lock()
        ended = threading.Semaphore(0)
        tally = {"ok": 0, "failed": 0}

        def end(future):
            try:
                line = f"ok {future.result().provider} {now_ms()}"
                outcome = "ok"
            except grpc.RpcError as e:
                line = f"err {e.code().name} {now_ms()} {e.details()}"
                outcome = "failed"
            with lock:
                tally[outcome] += 1
                say(line)
            ended.release()

        next_at = time.monotonic()
        for _ in range(count):
            call.future(request_class(name="xds"), timeout=5).add_done_callback(end)
            next_at += interval_ms / 1000
            time.sleep(max(0.0, next_at - time.monotonic()))
        for _ in range(count):
            ended.acquire()
        say(f"calls={count} ok={tally['ok']} failed={tally['failed']}")


def once(target):
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        # A raw call: an empty service has no provider to answer reflection either.
        call = channel.unary_unary("/hello.v1.HelloService/SayHello")
        try:
            call(b"", timeout=10)
            say("ok")
        except grpc.RpcError as e:
            say(f"err {e.code().name} {time.monotonic() - started:.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "calls":
        calls(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "once":
        once(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
