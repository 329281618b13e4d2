#!/usr/bin/python3
"""A Majordomo client (7/MDP, MDP/0.1) written from the RFC (https://rfc.zeromq.org/spec/7/), used by
deferq's interop tests to show that a plain MDP client can call a deferq cluster.

Each --args is one request whose body is the msgpack encoding of a JSON array of arguments; each
--raw is one request whose body is that text as is (for 8/MMI, e.g. mmi.service). --frames sends one
request whose body is several raw frames. Replies are read as docs/interop.md describes (one body
frame: the result; ["error", code, message, type]: a failure) and printed one JSON object a line.

    mdp_client.py --broker tcp://127.0.0.1:5555 --service add --args '[2, 3]'
    mdp_client.py --broker ... --socket dealer --service add --args '[1, 1]' --args '[2, 2]'
"""
import argparse
import json
import sys

import msgpack
import zmq

PROTOCOL = b"MDPC01"


def interpret(body, raw):
    """A reply body, as docs/interop.md defines it."""
    if len(body) == 1:
        if raw:
            return {"raw": body[0].decode("utf-8", "replace")}
        try:
            return {"result": msgpack.unpackb(body[0], raw=False)}
        except Exception:  # not msgpack: report the bytes
            return {"raw": body[0].decode("utf-8", "replace")}
    if len(body) == 4 and body[0] == b"error":
        code, message, kind = (frame.decode("utf-8", "replace") for frame in body[1:])
        return {"error": code, "message": message, "type": kind}
    return {"frames": [frame.decode("utf-8", "replace") for frame in body]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--socket", choices=["req", "dealer"], default="req",
                        help="req: one call at a time; dealer: all requests sent at once")
    parser.add_argument("--args", action="append", default=[], help="JSON array of arguments")
    parser.add_argument("--raw", action="append", default=[], help="raw text body")
    parser.add_argument("--frames", nargs="+", help="one request with these raw body frames")
    parser.add_argument("--raw-replies", action="store_true", help="do not decode msgpack")
    parser.add_argument("--timeout-ms", type=int, default=20000)
    args = parser.parse_args()

    bodies = [[msgpack.packb(json.loads(text))] for text in args.args]
    bodies += [[text.encode()] for text in args.raw]
    if args.frames:
        bodies.append([frame.encode() for frame in args.frames])
    service = args.service.encode()

    context = zmq.Context()
    dealer = args.socket == "dealer"
    socket = context.socket(zmq.DEALER if dealer else zmq.REQ)
    socket.linger = 0
    socket.connect(args.broker)

    def request(body):
        # A REQ socket adds the empty frame 0 itself; a DEALER client MUST add it.
        socket.send_multipart(([b""] if dealer else []) + [PROTOCOL, service, *body])

    def reply():
        if not socket.poll(args.timeout_ms):
            print(json.dumps({"timeout": True}), flush=True)
            sys.exit(1)
        frames = socket.recv_multipart()
        if dealer:
            if not frames or frames[0] != b"":
                raise SystemExit("reply without the empty frame: %r" % (frames,))
            frames = frames[1:]
        if len(frames) < 3 or frames[0] != PROTOCOL:
            raise SystemExit("not an MDP/Client REPLY: %r" % (frames,))
        out = {"service": frames[1].decode("utf-8", "replace")}
        out.update(interpret(frames[2:], args.raw_replies))
        print(json.dumps(out), flush=True)

    if dealer:
        for body in bodies:  # pipelined: every request before any reply
            request(body)
        for _ in bodies:
            reply()
    else:
        for body in bodies:  # REQ: strictly one call, then its reply
            request(body)
            reply()
    socket.close()
    context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
