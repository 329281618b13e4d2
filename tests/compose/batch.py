#!/usr/bin/python3
"""A deferq client for the compose tests, speaking the client protocol (DFQC01, docs/protocol.md) itself.

Sends N calls of calculate(i, 1000 + i) at once, then keeps every raw reply and checks that each call
was answered exactly once, with 1000 + 2i:
  lost        no answer before --deadline
  duplicated  a second REPLY or ERROR for a correlation id that was already answered
  wrong       a result that is not 1000 + 2i, or an answer for a correlation id never sent
  errors      an ERROR answer (worker_lost, timeout, ...)
It behaves as docs/protocol.md asks of a client, so that faults on the far side are survivable:
  - one routing id (16 bytes) for its whole life, on every socket it opens;
  - a HEARTBEAT every interval; the broker's interval and liveness are taken from its HEARTBEAT;
  - a broker silent for interval x liveness, or a DISCONNECT from it: close the socket, wait (backoff
    1 s doubling to 32 s, +-25 % jitter), open a new one;
  - a HEARTBEAT whose broker instance id differs from the one the pending calls were sent to: the broker
    restarted and knows nothing of them, so resend every pending call, with the same correlation ids.
    After a reconnect for silence, the same instance may have forgotten this client: resend too (the
    broker ignores a REQUEST that repeats a queued or running one).
Writes the number of answered calls to --progress (so a test can inject faults mid-batch) and prints one
summary line; exit status 0 only if every call was answered once, correctly.
"""
import argparse
import json
import os
import random
import struct
import sys
import time

import msgpack
import zmq

PROTOCOL = b"DFQC01"
REQUEST, REPLY, ERROR, HEARTBEAT, CANCEL, DISCONNECT, PROGRESS, BATCH = 1, 2, 3, 4, 5, 6, 7, 11
ERROR_NAMES = {1: "remote_error", 2: "timeout", 3: "cancelled", 4: "worker_lost", 5: "no_such_function",
               6: "bad_arguments", 7: "bad_result", 8: "overloaded", 9: "connection_lost",
               10: "unauthorized", 11: "protocol_error"}


def u64(value):
    return struct.pack(">Q", value)


def batch_records(body):
    """The records of a BATCH (docs/protocol.md §3a), each as [command byte] + its body frames.
    Raises ValueError when the framing is broken."""
    records, at = [], 0
    while at < len(body):
        if len(body) - at < 2:
            raise ValueError("truncated record header")
        command, count = body[at], body[at + 1]
        at += 2
        if not 1 <= count <= 16:
            raise ValueError(f"frame count {count}")
        frames = [bytes([command])]
        for _ in range(count):
            if len(body) - at < 4:
                raise ValueError("truncated frame length")
            (length,) = struct.unpack_from(">I", body, at)
            at += 4
            if length > len(body) - at:
                raise ValueError("frame length past the end")
            frames.append(body[at:at + length])
            at += length
        records.append(frames)
    return records


class BatchClient:
    def __init__(self, endpoint, function, timeout_ms, verbose):
        self.endpoint = endpoint
        self.function = function.encode()
        self.options = struct.pack(">IBBH", timeout_ms, 0, 0, 0)   # timeout, priority, max_attempts, reserved
        self.verbose = verbose
        self.identity = b"deferq-batch-" + os.urandom(3)             # 16 bytes, kept for life
        self.context = zmq.Context()
        self.socket = None
        self.interval = 1.0
        self.liveness = 3
        self.instance = None          # broker instance the pending calls were last sent to
        self.resend_on_heartbeat = False
        self.last_heard = time.monotonic()
        self.last_sent = 0.0
        self.backoff = 1.0
        self.calls = {}               # correlation id -> (a, b)
        self.pending = set()
        self.answers = {}             # correlation id -> list of ("reply", worker, attempt, value) / ("error", ...)
        self.unknown = 0
        self.resent = 0
        self.reconnects = 0
        self.instances = set()
        self.open_socket()

    def log(self, message):
        if self.verbose:
            print(f"batch: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    def open_socket(self):
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.ROUTING_ID, self.identity)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.connect(self.endpoint)
        self.last_heard = time.monotonic()
        self.send([bytes([HEARTBEAT])])

    def send(self, frames):
        self.socket.send_multipart([b"", PROTOCOL] + frames)
        self.last_sent = time.monotonic()

    def send_request(self, correlation):
        a, b = self.calls[correlation]
        self.send([bytes([REQUEST]), u64(correlation), self.function, self.options, msgpack.packb([a, b])])

    def start(self, count):
        for i in range(count):
            correlation = 1_000_000 + i
            self.calls[correlation] = (i, 1000 + i)
            self.pending.add(correlation)
            self.send_request(correlation)

    def resend_pending(self, why):
        self.log(f"resending {len(self.pending)} pending call(s): {why}")
        for correlation in sorted(self.pending):
            self.send_request(correlation)
        self.resent += len(self.pending)

    def reconnect(self, why):
        wait = self.backoff * random.uniform(0.75, 1.25)
        self.log(f"reconnecting in {wait:.1f} s: {why}")
        self.socket.close(linger=0)
        self.socket = None
        time.sleep(wait)
        self.backoff = min(self.backoff * 2, 32.0)
        self.reconnects += 1
        self.open_socket()

    def answer(self, correlation, entry):
        if correlation not in self.calls:
            self.unknown += 1
            return
        self.answers.setdefault(correlation, []).append(entry)
        self.pending.discard(correlation)

    def handle(self, frames):
        if len(frames) < 3 or frames[0] != b"" or frames[1] != PROTOCOL or len(frames[2]) != 1:
            self.log(f"malformed message: {frames!r}")
            return
        self.last_heard = time.monotonic()
        self.backoff = 1.0
        command = frames[2][0]
        if command == REPLY and len(frames) == 7:
            correlation = struct.unpack(">Q", frames[3])[0]
            attempt = struct.unpack(">I", frames[5])[0]
            self.answer(correlation, ("reply", frames[4].decode(errors="replace"), attempt,
                                      msgpack.unpackb(frames[6])))
        elif command == ERROR and len(frames) == 9:
            correlation = struct.unpack(">Q", frames[3])[0]
            code = frames[4][0]
            self.answer(correlation, ("error", ERROR_NAMES.get(code, str(code)), frames[5].decode(errors="replace"),
                                      frames[6].decode(errors="replace"), frames[7].decode(errors="replace")))
        elif command == HEARTBEAT and len(frames) >= 6:  # 7 since 1.1: + max message size
            instance = struct.unpack(">Q", frames[3])[0]
            self.interval = struct.unpack(">I", frames[4])[0] / 1000.0
            self.liveness = struct.unpack(">I", frames[5])[0]
            self.instances.add(instance)
            if self.instance is None:
                self.instance = instance
            elif instance != self.instance:
                self.instance = instance
                self.resend_pending(f"broker restarted (instance {instance:016x})")
                self.resend_on_heartbeat = False
            elif self.resend_on_heartbeat:
                self.resend_pending("reconnected after silence; the broker may have forgotten this client")
            self.resend_on_heartbeat = False
        elif command == BATCH and len(frames) == 4:
            # Several REPLY/ERROR messages in one frame: each handled as if it came alone.
            try:
                records = batch_records(frames[3])
            except ValueError as problem:
                self.log(f"malformed BATCH: {problem}")
                return
            for record in records:
                if record[0][0] in (REPLY, ERROR):
                    self.handle([b"", PROTOCOL] + record)
                else:
                    self.log(f"unexpected BATCH record {record[0][0]}")
        elif command == DISCONNECT:
            self.reconnect("broker said DISCONNECT (shutting down)")
        elif command == PROGRESS:
            pass
        else:
            self.log(f"unexpected command {command} with {len(frames)} frame(s)")

    def run(self, deadline, progress_file):
        poller = zmq.Poller()
        end = time.monotonic() + deadline
        last_progress = -1
        while self.pending and time.monotonic() < end:
            now = time.monotonic()
            if now - self.last_sent >= self.interval:
                self.send([bytes([HEARTBEAT])])
            if now - self.last_heard >= self.interval * self.liveness:
                self.resend_on_heartbeat = True
                self.reconnect(f"broker silent for {now - self.last_heard:.1f} s")
                continue
            poller = zmq.Poller()
            poller.register(self.socket, zmq.POLLIN)
            if poller.poll(100):
                while True:
                    try:
                        frames = self.socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.handle(frames)
                    if self.socket is None:
                        break
            done = len(self.calls) - len(self.pending)
            if progress_file and done != last_progress:
                with open(progress_file + ".tmp", "w") as f:
                    f.write(f"{done}\n")
                os.replace(progress_file + ".tmp", progress_file)
                last_progress = done
        # Late duplicates: keep listening a little after the last answer.
        linger_end = time.monotonic() + 1.0
        while time.monotonic() < linger_end and self.socket is not None:
            if self.socket.poll(100):
                try:
                    self.handle(self.socket.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    pass
        if self.socket is not None:
            self.send([bytes([DISCONNECT])])
            self.socket.close(linger=200)
        self.context.term()

    def report(self, elapsed):
        lost = len(self.pending)
        duplicated = sum(1 for entries in self.answers.values() if len(entries) > 1)
        wrong = self.unknown
        errors = 0
        workers = {}
        retried = 0
        examples = []
        for correlation, entries in self.answers.items():
            first = entries[0]
            a, b = self.calls[correlation]
            if first[0] == "error":
                errors += 1
                if len(examples) < 5:
                    examples.append(f"call {correlation}: {first[1]} {first[3]}")
                continue
            _, worker, attempt, value = first
            workers[worker] = workers.get(worker, 0) + 1
            retried += attempt > 1
            if not isinstance(value, (int, float)) or value != a + b:
                wrong += 1
                if len(examples) < 5:
                    examples.append(f"call {correlation}: calculate({a}, {b}) = {value!r}")
        ok = len(self.calls) - lost - errors - (wrong - self.unknown)
        summary = {"calls": len(self.calls), "ok": ok, "lost": lost, "duplicated": duplicated, "wrong": wrong,
                   "errors": errors, "retried": retried, "resent": self.resent, "reconnects": self.reconnects,
                   "broker_instances": len(self.instances), "workers": workers, "seconds": round(elapsed, 1)}
        passed = lost == 0 and duplicated == 0 and wrong == 0 and errors == 0 and ok == len(self.calls)
        print(f"batch: {len(self.calls)} calls: {ok} ok, {lost} lost, {duplicated} duplicated, {wrong} wrong, "
              f"{errors} errors; {retried} ran again after a fault, {self.resent} resent, "
              f"{len(workers)} workers, {len(self.instances)} broker instance(s), {elapsed:.1f} s")
        for example in examples:
            print(f"batch:   {example}")
        print("batch-json: " + json.dumps(summary, sort_keys=True))
        return passed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--function", default="calculate")
    parser.add_argument("--call-timeout", type=int, default=0, help="per-call timeout sent to the broker, ms")
    parser.add_argument("--deadline", type=float, default=180, help="give up on unanswered calls after S s")
    parser.add_argument("--progress", help="file to keep the number of answered calls in")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    client = BatchClient(args.broker, args.function, args.call_timeout, args.verbose)
    started = time.monotonic()
    client.start(args.calls)
    client.run(args.deadline, args.progress)
    return 0 if client.report(time.monotonic() - started) else 1


if __name__ == "__main__":
    sys.exit(main())
