#!/usr/bin/python3
"""The reference scenario from Python, through the broker's XML-RPC gateway (docs/interop.md):
three calculate jobs at once, each on whichever worker is free, then their total.

    deferq-broker --http 127.0.0.1:8080 --gateway
    deferq-worker --broker tcp://127.0.0.1:5556        # (three of them, to spread the jobs)
    /usr/bin/python3 examples/xmlrpc_client.py http://127.0.0.1:8080/RPC2

Only the standard library: xmlrpc.client speaks XML-RPC, threads make the three calls at once.
With a gateway token, put it in the URL as the password: http://user:TOKEN@127.0.0.1:8080/RPC2
"""
import sys
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/RPC2"
jobs = [(42, 47), (52, 58), (62, 69)]


def calculate(arguments):
    # One proxy per thread: a ServerProxy is not meant to be shared between threads.
    return xmlrpc.client.ServerProxy(url).calculate(*arguments)


try:
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(calculate, jobs))
except xmlrpc.client.Fault as fault:
    sys.exit(f"failed: fault {fault.faultCode}: {fault.faultString}")

for (a, b), result in zip(jobs, results):
    print(f"calculate({a}, {b}) = {result:g}")
print(f"total: {sum(results):g}")
