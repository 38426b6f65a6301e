#!/usr/bin/env python3
"""Writes the JSON body of a log request for bench/run.sh's load generators (LoadGen and wrk send the same bytes).

usage: body.py FILE [--batch N] [--ids] [--endpoint-length L]
Without --batch, one log (POST /api/v1/logs); with it, {"logs": [N logs]} (POST /api/v1/logs/batch). The logs
happened a second ago. Each carries a status code and a duration, and a batch's logs spread over six endpoints (with
ids in their paths) and an API's mix of statuses, so that a batch adds to several rollup cells, as real traffic does. --ids gives every log an id whose first 16 characters are a placeholder that the
generators overwrite in each request, so every log they send has an id of its own. --endpoint-length pads each
endpoint to that many characters (the noisy neighbour's largest batches).
"""
import argparse
import json
import time

ID_PLACEHOLDER = "@" * 16  # the generators look for it byte for byte
MAX_BATCH_BODY_BYTES = 1024 * 1024  # RequestLimits:MaxBatchRequestBodyBytes' default: larger is a 413

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("--batch", type=int, default=0)
parser.add_argument("--ids", action="store_true")
parser.add_argument("--endpoint-length", type=int, default=0)
options = parser.parse_args()
timestamp = int(time.time() * 1000) - 1000


ENDPOINTS = ["/v1/orders/{}", "/v1/users/{}", "/v1/products/{}", "/v1/orders/{}/items", "/v1/search?q={}", "/v1/carts/{}"]
STATUSES = [200] * 15 + [201, 204, 404, 429, 500]


def log(index):
    endpoint = ENDPOINTS[index % len(ENDPOINTS)].format(index)
    entry = {
        "ipAddress": f"203.0.113.{index % 250 + 1}",
        "endpoint": endpoint + "/" + "x" * (options.endpoint_length - len(endpoint) - 1) if options.endpoint_length else endpoint,
        "method": "GET",
        "timestamp": timestamp,
        "statusCode": STATUSES[index % len(STATUSES)],
        "durationMs": round(5 + index * 7.3 % 200, 3),
    }
    if options.ids:
        entry["id"] = f"{ID_PLACEHOLDER}{index:04x}"
    return entry


body = json.dumps({"logs": [log(index) for index in range(options.batch)]} if options.batch else log(0), separators=(",", ":"))
if len(body) > MAX_BATCH_BODY_BYTES:
    raise SystemExit(f"The body is {len(body):,} bytes, over the API's {MAX_BATCH_BODY_BYTES:,}: use shorter endpoints.")
with open(options.file, "w", encoding="ascii") as file:
    file.write(body)
