"""A gRPC server nobody here wrote the library of: Python grpcio serving hello.v1.HelloService
without generated stubs (the two string fields are encoded by hand), so zoorpc's consumer can
call a server that zoorpc neither serves nor registers.

  hello_server.py [--max-ping-strikes N]
      listens on 127.0.0.1 (a free port), prints `listening 127.0.0.1:PORT`, serves until killed;
      SayHello(name) answers message `Hello NAME from python`, provider `python:PORT`; a name
      `quiet:S` is answered after S seconds of silence. `--max-ping-strikes N` sets the server's
      ping policy's strikes (grpcio's default: 2; PINGs closer than 5 minutes apart are strikes).
"""

import sys
import threading
import time
from concurrent import futures

import grpc


def say(line):
    print(line, flush=True)


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def string_field(number, text):
    raw = text.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def request_name(data):
    """Field 1 (string) of a HelloRequest; other fields skipped."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, i = read_varint(data, i)
            if number == 1:
                return data[i : i + length].decode("utf-8")
            i += length
        elif wire == 0:
            _, i = read_varint(data, i)
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return ""


def main():
    options = []
    if sys.argv[1:2] == ["--max-ping-strikes"]:
        options.append(("grpc.http2.max_ping_strikes", int(sys.argv[2])))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    port = server.add_insecure_port("127.0.0.1:0")

    def say_hello(request, context):
        name = request_name(request)
        if name.startswith("quiet:"):
            time.sleep(float(name[len("quiet:") :]))
        return string_field(1, "Hello %s from python" % name) + string_field(2, "python:%d" % port)

    handler = grpc.method_handlers_generic_handler(
        "hello.v1.HelloService",
        {"SayHello": grpc.unary_unary_rpc_method_handler(say_hello)},
    )
    server.add_generic_rpc_handlers((handler,))
    server.start()
    say("listening 127.0.0.1:%d" % port)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
