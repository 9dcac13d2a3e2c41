#!/usr/bin/env python3
"""Writes the SigmaHQ regression events (evtx JSON shape, one object per line) replicated to at least
N events, for the whole-process comparison with the independent evaluator.
usage: make-bench-events.py REFERENCE_DIR OUT.jsonl [N]"""
import json, os, sys

ref, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
events = []
root = os.path.join(ref, "sigma", "regression_data")
for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        if f.endswith(".json"):
            text = open(os.path.join(d, f), encoding="utf-8").read()
            dec, i = json.JSONDecoder(), 0
            while i < len(text):
                while i < len(text) and text[i].isspace():
                    i += 1
                if i >= len(text):
                    break
                obj, i = dec.raw_decode(text, i)
                events.extend(obj if isinstance(obj, list) else [obj])
with open(out, "w", encoding="utf-8") as w:
    written = 0
    while written < n:
        for e in events:
            w.write(json.dumps(e, ensure_ascii=False) + "\n")
            written += 1
print(f"{written} events ({len(events)} distinct) -> {out}", file=sys.stderr)
