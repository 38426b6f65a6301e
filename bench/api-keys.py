#!/usr/bin/env python3
"""Registers clients through the API and gives each its full allowance of API keys; prints one key per line.

Used by bench/run.sh for the scenario that spreads single-event ingest over many keys, as many API providers'
callers would, instead of one: each key is then a rate-limit partition of its own.
usage: api-keys.py BASE_URL CLIENTS KEYS_PER_CLIENT
"""
import http.client
import json
import random
import sys
from urllib.parse import urlsplit

base, clients, keys_per_client = urlsplit(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
connection = http.client.HTTPConnection(base.hostname, base.port)


def call(method, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, json.dumps(body), headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status not in (200, 201):
        sys.exit(f"{method} {path}: {response.status} {answer[:300]!r}")
    return json.loads(answer)["data"]


run = random.randrange(1 << 30)
for client in range(clients):
    email, password = f"bench-keys-{run}-{client}@example.com", "Bench-password-1"
    print(call("POST", "/api/v1/auth/register", {"name": f"bench keys {client}", "email": email, "password": password})["apiKey"])
    token = call("POST", "/api/v1/auth/login", {"email": email, "password": password})["token"]["accessToken"]
    for key in range(1, keys_per_client):
        print(call("POST", "/api/v1/keys", {"name": f"bench {key}"}, token)["apiKey"])
