#!/usr/bin/env python3
"""Creates API keys through the API for clients given by their bearer tokens; prints one key per line.

Used by bench/run.sh for the scenarios that spread single-event ingest over many keys of many clients, as many API
providers' callers would, instead of one: each key is then a rate-limit partition of its own. The clients come
from bench/DataLoader (--logs 0); the keys from POST /api/v1/keys, so they are made, hashed and stored as any
client's are. Keys are printed round robin over the clients (every client's first key, then every second key...), so
that keys taken in turn belong to different clients.
usage: api-keys.py BASE_URL TOKENS_FILE KEYS_PER_CLIENT
"""
import concurrent.futures
import http.client
import json
import sys
import threading
from urllib.parse import urlsplit

CONNECTIONS = 8  # the API creates a client's keys one at a time (a row lock): parallel across clients only

base, tokens_file, keys_per_client = urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with open(tokens_file, encoding="ascii") as file:
    tokens = [line.strip() for line in file if line.strip()]
local = threading.local()


def create_keys(token):
    if not hasattr(local, "connection"):
        local.connection = http.client.HTTPConnection(base.hostname, base.port)
    keys = []
    for key in range(keys_per_client):
        local.connection.request("POST", "/api/v1/keys", json.dumps({"name": f"bench {key}"}),
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        response = local.connection.getresponse()
        answer = response.read()
        if response.status != 201:
            raise SystemExit(f"POST /api/v1/keys: {response.status} {answer[:300]!r}")
        keys.append(json.loads(answer)["data"]["apiKey"])
    return keys


with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as pool:
    per_client = list(pool.map(create_keys, tokens))
for key in range(keys_per_client):
    for keys in per_client:
        print(keys[key])
