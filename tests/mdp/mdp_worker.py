#!/usr/bin/python3
"""A Majordomo worker (7/MDP, MDP/0.1) written from the RFC (https://rfc.zeromq.org/spec/7/), used by
deferq's interop tests to show that a plain MDP worker serves a deferq cluster unchanged.

It serves one service by echoing the request body. It prints "ready" when it has sent READY and
"request N" when it receives its N-th request (flushed, so a test can act mid-job).

    mdp_worker.py --broker tcp://127.0.0.1:5556 --service echo [--delay-ms 500]
"""
import argparse
import sys
import time

import zmq

PROTOCOL = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = (bytes([n]) for n in range(1, 6))


def say(text):
    print(text, flush=True)


class Worker:
    def __init__(self, broker, service, heartbeat_ms, liveness):
        self.context = zmq.Context()
        self.broker = broker
        self.service = service.encode()
        self.interval = heartbeat_ms / 1000.0
        self.liveness = liveness
        self.socket = None
        self.connect()

    def connect(self):
        """Opens a new DEALER socket and registers: READY carries the one service we offer."""
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(self.broker)
        self.send(READY, [self.service])
        self.missed = 0
        self.heartbeat_at = time.monotonic() + self.interval
        say("ready")

    def send(self, command, frames=()):
        # Every MDP/Worker command starts with an empty frame and the protocol id.
        self.socket.send_multipart([b"", PROTOCOL, command, *frames])
        self.heartbeat_at = time.monotonic() + self.interval

    def heartbeat_if_due(self):
        if time.monotonic() >= self.heartbeat_at:
            self.send(HEARTBEAT)

    def work(self, body, delay):
        """Runs a request: keeps heartbeating while it takes its time, then echoes the body."""
        until = time.monotonic() + delay
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return body
            time.sleep(min(left, self.interval / 2))
            self.heartbeat_if_due()

    def run(self, delay):
        served = 0
        while True:
            if self.socket.poll(int(self.interval * 1000)):
                frames = self.socket.recv_multipart()
                self.missed = 0  # any command from the broker is a sign of life
                if len(frames) < 3 or frames[0] != b"" or frames[1] != PROTOCOL:
                    say("invalid message from the broker: %r" % (frames,))
                    continue
                command = frames[2]
                if command == REQUEST:
                    # REQUEST: client address, empty delimiter, body.
                    if len(frames) < 5 or frames[4] != b"":
                        say("invalid REQUEST: %r" % (frames,))
                        continue
                    address, body = frames[3], frames[5:]
                    served += 1
                    say("request %d" % served)
                    reply = self.work(body, delay)
                    self.send(REPLY, [address, b"", *reply])
                elif command == HEARTBEAT:
                    pass
                elif command == DISCONNECT:
                    say("disconnected by the broker: reconnecting")
                    self.connect()
                else:
                    say("unexpected command %r" % (command,))
            else:
                self.missed += 1
                if self.missed >= self.liveness:
                    say("broker silent: reconnecting")
                    time.sleep(self.interval)
                    self.connect()
            self.heartbeat_if_due()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--liveness", type=int, default=3)
    parser.add_argument("--delay-ms", type=int, default=0, help="how long each request takes")
    args = parser.parse_args()
    worker = Worker(args.broker, args.service, args.heartbeat_ms, args.liveness)
    try:
        worker.run(args.delay_ms / 1000.0)
    except KeyboardInterrupt:
        worker.send(DISCONNECT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
