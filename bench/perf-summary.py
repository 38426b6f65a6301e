#!/usr/bin/env python3
"""Where each request's CPU went, from a whole-machine `perf record -a -g` of one benchmark scenario.

    perf-summary.py PERF_DATA API_PID POSTMASTER_PID REDIS_PID REQUESTS_SERVED

Prints microseconds of CPU per request served: first by process (API, PostgreSQL, Redis, the rest: the load
generator and the kernel's idle loop), then inside the API by the code each sample was in, then inside the API by
component: the innermost namespace on the sample's stack that is neither the runtime's plumbing (tasks, thread pool,
collections) nor the kernel, so that allocation, GC and library time is charged to the component that caused it
(authentication, rate limiting, JSON...). JIT-compiled .NET code is named through the runtime's perf map
(DOTNET_PerfMapEnabled=1, which bench/run.sh sets when profiling); kernel time is charged to the system call it
served (a loopback send includes delivering the data to the receiving process and waking it). System calls made
through libc carry no managed caller on their stack, so the component table leaves them unowned.
"""
import collections
import re
import subprocess
import sys

data, api_pid, postmaster_pid, redis_pid, served = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

header = subprocess.run(["perf", "report", "-i", data, "--header-only"], capture_output=True, text=True).stdout
frequency = int(re.search(r"sample_freq \} = (\d+)", header).group(1)) if "sample_freq" in header else 499
script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,ip,sym,dso"],
                        capture_output=True, text=True, errors="replace").stdout

KERNEL_FRAME = re.compile(r"^\s*f{8}[0-9a-f]{8} ")
FRAME = re.compile(r"^\s*[0-9a-f]+ (.*?)(?: \((.*)\))?$")


def symbol(frame):
    """A frame's symbol and the file it came from."""
    match = FRAME.match(frame)
    return (match.group(1), match.group(2) or "") if match else (frame.strip(), "")

JIT_METHOD = re.compile(r"\[[\w.]+\] ([\w.]+?)(?:[`+:<]|$)")


def category(frames):
    """The API's code a sample was in: the leaf frame, or for kernel time the user-space call that entered it."""
    leaf = frames[0]
    if KERNEL_FRAME.match(leaf):
        caller = next((frame for frame in frames if not KERNEL_FRAME.match(frame)), None)
        name, where = symbol(caller) if caller else ("?", "")
        return f"kernel, from {name}" if "[" not in name and "perf-" not in where else "kernel, from managed code"
    name, where = symbol(leaf)
    if "libcoreclr.so" in where or "libclrjit.so" in where:
        return ".NET runtime (GC, allocation, type checks, JIT)"
    method = JIT_METHOD.search(name)
    if method:
        return ".".join(method.group(1).split(".")[:3])
    file = where.rsplit("/", 1)[-1]
    if name == "[unknown]" and file.endswith(".dll"):
        return f"precompiled (ReadyToRun) code of {file}"
    return f"{name[:60]} ({file})"


# The runtime's own plumbing, skipped when looking for the component a sample belongs to.
PLUMBING = re.compile(r"^System\.(Runtime|Threading|Collections|SpanHelpers|PackedSpanHelpers|Buffer|Memory|String|Span|Number|Guid|"
                      r"Text\.(Ascii|Unicode|UTF8)|Linq|Object|Array|Enum|Delegate|Convert|ThrowHelper|Private)|^dynamicClass|"
                      r"^System\.IO\.Pipelines")
MANAGED_FRAME = re.compile(r"\[[\w.]+\] ([\w.`]+)")


def component(frames):
    """The innermost non-plumbing namespace (three parts) of JIT-compiled code on the stack, or what the leaf was."""
    for frame in frames:
        name, where = symbol(frame)
        managed = MANAGED_FRAME.search(name) if "perf-" in where or name.startswith("[") else None
        if managed and not PLUMBING.search(managed.group(1)):
            parts = managed.group(1).split(".")
            # Libraries by their name (Npgsql, StackExchange.Redis), the framework and Tracker by namespace.
            return ".".join(parts[:3] if parts[0] in ("Microsoft", "System", "Tracker") else parts[:1])
    return "kernel, no managed caller" if KERNEL_FRAME.match(frames[0]) else "runtime or native code, no managed caller"


by_process = collections.Counter()
in_api = collections.Counter()
by_component = collections.Counter()
for block in script.split("\n\n"):
    lines = [line for line in block.split("\n") if line.strip()]
    if not lines:
        continue
    match = re.match(r"^\s*(.+?)\s+(\d+)\s*$", lines[0])
    if not match:
        continue
    comm, pid = match.group(1), match.group(2)
    if pid == api_pid:
        by_process["API"] += 1
        if len(lines) > 1:
            in_api[category(lines[1:])] += 1
            by_component[component(lines[1:])] += 1
    elif pid == redis_pid:
        by_process["Redis"] += 1
    elif comm.startswith("postgres") or pid == postmaster_pid:
        by_process["PostgreSQL"] += 1
    elif pid == "0":
        by_process["idle"] += 1
    else:
        by_process["load generator and the rest"] += 1

per_request = 1e6 / frequency / served
print(f"{served:,} requests; {sum(by_process.values()):,} samples at {frequency} Hz on every CPU\n")
print("| process | CPU µs per request |\n|---|---:|")
for process, samples in by_process.most_common():
    print(f"| {process} | {samples * per_request:.1f} |")
print("\n| in the API | CPU µs per request |\n|---|---:|")
for name, samples in in_api.most_common(25):
    print(f"| {name} | {samples * per_request:.2f} |")
print("\n| in the API, by component | CPU µs per request |\n|---|---:|")
for name, samples in by_component.most_common(25):
    print(f"| {name} | {samples * per_request:.2f} |")
