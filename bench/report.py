#!/usr/bin/env python3
"""Prints bench/run.sh's tables, in Markdown, from the scenarios' results (one JSON object each).

usage: report.py MEASURED_RESULT... -- COUNTED_RESULT...
Ratios compare rows of this run only: throughput against the no-op ceiling measured by the same generator, and the
many-key rows against the one-key row.
"""
import json
import sys

separator = sys.argv.index("--")
rows = [json.loads(argument) for argument in sys.argv[1:separator]]
counted = [json.loads(argument) for argument in sys.argv[separator + 1:]]
by_scenario = {row["scenario"]: row for row in rows}


def share(part, whole):
    return f"{part / whole:.0%}" if whole else "—"


def latency(row):
    return f'{row["p50Ms"]:.2f} | {row["p99Ms"]:.2f} | {row["maxMs"]:.1f}'


ceilings = {row["generator"]: row["requestsPerSecond"] for row in rows if row["scenario"].startswith("baseline")}
print("| scenario | generator | connections | requests/s | logs/s | p50 ms | p99 ms | max ms | errors | API peak RSS MB "
      "| CPU µs per request: API / PostgreSQL / Redis / generator | of no-op, same generator |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for row in rows:
    # The noisy neighbour measures latency under a flood, not throughput.
    ceiling = None if row["scenario"].startswith("ingest-noisy-neighbour") else ceilings.get(row["generator"])
    cpu = " / ".join(f"{value:.1f}" for value in row["cpuMicroseconds"])
    print(f'| {row["scenario"]} | {row["generator"]} | {row["connections"]} | {row["requestsPerSecond"]:,.0f} | '
          f'{row["logsPerSecond"]:,.0f} | {latency(row)} | {row["errors"]} | {row["rssMb"]} | {cpu} | '
          f'{share(row["requestsPerSecond"], ceiling)} |')

if counted:
    print("\nCounted runs (LoadGen, before each write scenario's measured run):\n")
    print("| scenario | connections | requests/s | acknowledged logs | rows written | generator CPU µs per request, start-up included |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in counted:
        served = max(1, row["acknowledgedRequests"] + row["errors"])
        print(f'| {row["scenario"]} | {row["connections"]} | {row["requestsPerSecond"]:,.0f} | {row["acknowledgedLogs"]:,} | '
              f'{row["rows"]:,} | {row["generatorCpuSeconds"] * 1e6 / served:.1f} |')

one_key = by_scenario.get("ingest-single-64")
many_keys = [by_scenario[name] for name in ("ingest-single-64-keys", "ingest-single-64-keys-10k") if name in by_scenario]
if one_key and many_keys:
    print("\n| many keys | requests/s | of one key (ingest-single-64) |\n|---|---:|---:|")
    for row in many_keys:
        print(f'| {row["scenario"]} | {row["requestsPerSecond"]:,.0f} | {share(row["requestsPerSecond"], one_key["requestsPerSecond"])} |')

instances = [by_scenario[f"ingest-single-64-instances-{count}"] for count in (1, 2, 3)
             if f"ingest-single-64-instances-{count}" in by_scenario]
if instances:
    first = instances[0]["requestsPerSecond"] if instances[0]["scenario"].endswith("-1") else None
    print("\n| API processes | requests/s | of one process | CPU µs per request: API (all processes) / PostgreSQL / Redis |")
    print("|---:|---:|---:|---|")
    for row in instances:
        cpu = " / ".join(f"{value:.1f}" for value in row["cpuMicroseconds"][:3])
        print(f'| {row["scenario"].rsplit("-", 1)[1]} | {row["requestsPerSecond"]:,.0f} | {share(row["requestsPerSecond"], first)} | {cpu} |')

# Every noisy row in the run's order: a scenario named twice gets two tables.
for noisy in (row for row in rows if row["scenario"] in ("ingest-noisy-neighbour", "ingest-noisy-neighbour-limited")):
    limits = "the product's ingest rate limits" if noisy["scenario"].endswith("-limited") else "ingest rate limits raised"
    print(f'\nNoisy neighbour, {limits} (`{noisy["scenario"]}`, API peak RSS {noisy["rssMb"]} MB):\n')
    print("| tenant | connections | requests/s | logs/s | p50 ms | p99 ms | max ms | answered 201 | other answers |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, tenant in (("victim: single logs", noisy["tenants"]["victim"]),
                         ("flooder: batches of 1,000 logs, ~900-character endpoints", noisy["tenants"]["flooder"])):
        statuses = tenant["statuses"]
        others = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()) if status != "201") or "none"
        answered = sum(statuses.values())
        print(f'| {name} | {tenant["connections"]} | {tenant["requestsPerSecond"]:,.0f} | {tenant["logsPerSecond"]:,.0f} | '
              f'{latency(tenant)} | {statuses.get("201", 0) / max(1, answered):.2%} | {others} |')
