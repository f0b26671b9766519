#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# tools/bench/latency_plot.py plot: reads tundra-bench JSON lines and the peer harness's RESULT
# lines, draws one p99 and one p50 line per series with a point per rate, in rate order, and
# refuses input without latency points.
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

script = sys.argv[1]
lines = [
    '{"scenario":"pairs","rate":20000,"latency_us":{"p50":80.0,"p99":400.0}}',
    '{"scenario":"pairs","rate":5000,"latency_us":{"p50":50.0,"p99":120.0}}',
    'RESULT {"label":"redis p500-r10k-stag","proto":"redis","rate":10000,"p50_us":60.0,"p99_us":300.0}',
    'RESULT {"label":"redis p500-r50k-stag","proto":"redis","rate":50000,"p50_us":90.0,"p99_us":2000.0}',
    'noise that is not JSON',
]
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "in.jsonl")
    out = os.path.join(d, "plot.svg")
    with open(src, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, script, "plot", src, "--out", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "tundra-bench pairs (2 points)" in r.stdout and "redis (2 points)" in r.stdout, r.stdout
    root = ET.parse(out).getroot()  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    polylines = root.findall(f"{ns}polyline")
    assert len(polylines) == 4, len(polylines)  # p99 + p50 for each of the two series
    for pl in polylines:
        xs = [float(p.split(",")[0]) for p in pl.get("points").split()]
        assert len(xs) == 2 and xs == sorted(xs), xs  # one point per rate, rate order
    # p99 is drawn above p50 (smaller y) at the same rate for the tundra-bench series.
    p99, p50 = polylines[2], polylines[3]  # sorted series: "redis", then "tundra-bench pairs"
    y99 = [float(p.split(",")[1]) for p in p99.get("points").split()]
    y50 = [float(p.split(",")[1]) for p in p50.get("points").split()]
    assert all(a < b for a, b in zip(y99, y50)), (y99, y50)
    texts = [t.text for t in root.findall(f"{ns}text")]
    assert "redis p99" in texts and "tundra-bench pairs p50" in texts, texts
    empty = os.path.join(d, "empty.jsonl")
    open(empty, "w").close()
    r = subprocess.run([sys.executable, script, "plot", empty, "--out", out], capture_output=True, text=True)
    assert r.returncode != 0 and "no latency points" in r.stderr, r.stderr
print("latency_plot OK")
