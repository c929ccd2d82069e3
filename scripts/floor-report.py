#!/usr/bin/env python3
"""A floor's figures beside the webhook's, for scripts/bench-webhook.sh.

Usage: floor-report.py LOAD.json FLOOR.json NAME RATIO CPU_SECONDS [WEBHOOK_US_A_REVIEW]
LOAD.json and FLOOR.json are the load generator's reports for the webhook and the floor; NAME
says what the floor is; RATIO names the ratio printed (as "webhook/stack"); CPU_SECONDS is the
floor's CPU under the load. With WEBHOOK_US_A_REVIEW, what judging costs (the difference) is said.
"""
import json
import sys

load, floor = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
name, ratio, cpu = sys.argv[3], sys.argv[4], float(sys.argv[5])
per = cpu / max(floor["sent"], 1) * 1e6
judging = ""
if len(sys.argv) > 6:
    webhook = float(sys.argv[6])
    judging = f" (the webhook: {webhook:.0f}, so judging {webhook - per:.0f})"
print(f"{name}: answers {floor['answered']}, transport errors {floor['transportErrors']}, "
      f"CPU {cpu:.2f} s ({per:.0f} us a review){judging}")
for key, label in (("serviceMs", "call"), ("wireMs", "wire")):
    a, b = load[key], floor[key]
    print(f"  {label:<5} p50 {b['p50']:.3f}  p90 {b['p90']:.3f}  p99 {b['p99']:.3f}  p99.9 {b['p999']:.3f} ms;"
          f" {ratio}: p50 {a['p50'] / b['p50']:.2f}x  p99 {a['p99'] / b['p99']:.2f}x")
ws = floor["wireP99BySecondMs"]
print(f"  seconds at wire p99 < 2ms: {sum(1 for x in ws if x < 2.0)} of {len(ws)} (worst {max(ws):.2f} ms)")
st = floor["stalls"]
print(f"  calls over {st['slowMs']:g} ms: {st['slowCallsInStalls'] + st['slowCallsAlone']} (wire), "
      f"{st['slowCallsInStalls']} in {st['stalls']} stalls (longest {st['longestMs']:.0f} ms), {st['slowCallsAlone']} alone")
