#!/usr/bin/env python3
"""How steady this machine's CPU is right now (a probe for the benchmarks, not a benchmark).

Times a fixed unit of CPU work (~0.1 ms) over and over for SECONDS on one thread. A thread that
loses the CPU shows as a gap; a CPU that slows down (a neighbour on the same physical core, a
host under load) shows as units that take longer although the thread kept running. Prints the
unit's median and p99 and the episodes in which units took over twice the median for more than
10 ms: on the project's 2-core machines they come every second or two and last ~100 ms, and
latency percentiles measured meanwhile carry them.

Usage: scripts/cpu-steadiness.py [SECONDS=10]
"""
import sys
import time


def unit():
    x = 0
    for i in range(2000):
        x += i * i
    return x


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    for _ in range(200):
        unit()
    t0 = time.perf_counter()
    end = t0 + seconds
    times = []
    while True:
        a = time.perf_counter()
        unit()
        b = time.perf_counter()
        times.append((a - t0, b - a))
        if b > end:
            break
    d = sorted(t for _, t in times)
    med = d[len(d) // 2]
    episodes = []
    for at, took in times:
        if took <= 2 * med:
            continue
        if episodes and at - episodes[-1][1] < 0.02:
            episodes[-1][1] = at + took
        else:
            episodes.append([at, at + took])
    long_ones = [e for e in episodes if e[1] - e[0] > 0.01]
    slowed = sum(e[1] - e[0] for e in long_ones)
    print(
        f"cpu steadiness      : unit median {med * 1e3:.3f} ms, p99 {d[int(len(d) * 0.99)] * 1e3:.3f} ms; "
        f"{len(long_ones)} episodes over {seconds:.0f} s with units at >2x the median for >10 ms "
        f"({slowed * 1e3:.0f} ms in all, {slowed / seconds * 100:.1f}% of the time)"
    )


if __name__ == "__main__":
    main()
