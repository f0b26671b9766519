#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Latency against offered load, drawn as an SVG (Python standard library only).

  latency_plot.py sweep --port P --rates 2000,5000,10000 [--pairs 100] [--messages-s 3]
                  [--bench build/tools/bench/tundra-bench] --jsonl OUT.jsonl
      runs `tundra-bench pairs --rate R` (open loop) once per rate against a running tundrad
      and appends each JSON result line to OUT.jsonl
  latency_plot.py plot IN.jsonl [IN2.jsonl ...] --out plot.svg [--title TEXT]
      draws p50 and p99 (log scale) against the offered rate, one colour per series. Reads
      tundra-bench JSON lines (series = "tundra-bench <scenario>") and the RESULT lines of the
      peer harness ../shared/bench (fanout.cpp via run_rate.sh: series = the label's first word,
      i.e. the server; x = the offered rate)
"""
import argparse
import json
import math
import subprocess
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def load_points(paths):
    """series -> list of (rate, p50_us, p99_us)"""
    series = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("RESULT "):
                    line = line[len("RESULT "):]
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                if "latency_us" in r:  # tundra-bench
                    name = "tundra-bench " + r.get("scenario", "?")
                    rate, p50, p99 = r.get("rate", 0), r["latency_us"]["p50"], r["latency_us"]["p99"]
                elif "p99_us" in r:  # peer harness
                    label = r.get("label") or r.get("proto", "?")
                    name = label.split()[0]
                    rate, p50, p99 = r.get("rate", 0), r["p50_us"], r["p99_us"]
                else:
                    continue
                if rate and p50 > 0 and p99 > 0:
                    series.setdefault(name, []).append((float(rate), float(p50), float(p99)))
    for pts in series.values():
        pts.sort()
    return series


def svg(series, title):
    w, h, left, right, top, bottom = 760, 460, 80, 180, 40, 60
    pw, ph = w - left - right, h - top - bottom
    xs = [p[0] for pts in series.values() for p in pts]
    ys = [v for pts in series.values() for p in pts for v in p[1:]]
    x_max = max(xs) * 1.05
    y_lo = 10 ** math.floor(math.log10(min(ys)))
    y_hi = 10 ** math.ceil(math.log10(max(ys)))
    if y_hi <= y_lo:
        y_hi = y_lo * 10

    def px(x):
        return left + pw * x / x_max

    def py(y):
        return top + ph * (1 - (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    decade = y_lo
    while decade <= y_hi * 1.0001:
        y = py(decade)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{decade:g} us" if decade < 1000 else f"{decade / 1000:g} ms"
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        decade *= 10
    for i in range(6):
        x = x_max * i / 5
        out.append(f'<line x1="{px(x):.1f}" y1="{top + ph}" x2="{px(x):.1f}" y2="{top + ph + 5}" stroke="#444"/>')
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 18}" text-anchor="middle">{x:,.0f}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 15}" text-anchor="middle">offered load (messages/s)</text>')
    out.append(f'<text x="18" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {top + ph / 2})">'
               'latency (log scale)</text>')
    for k, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[k % len(COLOURS)]
        for idx, dash in ((2, ""), (1, ' stroke-dasharray="5,4"')):
            path = " ".join(f"{px(p[0]):.1f},{py(p[idx]):.1f}" for p in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            for p in pts:
                out.append(f'<circle cx="{px(p[0]):.1f}" cy="{py(p[idx]):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + 36 * k
        out.append(f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 36}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 40}" y="{ly + 4}">{name} p99</text>')
        out.append(f'<line x1="{left + pw + 12}" y1="{ly + 16}" x2="{left + pw + 36}" y2="{ly + 16}" stroke="{colour}" '
                   'stroke-width="2" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{left + pw + 40}" y="{ly + 20}">{name} p50</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rates", required=True)
    s.add_argument("--pairs", type=int, default=100)
    s.add_argument("--seconds", type=float, default=3.0, help="run length per rate")
    s.add_argument("--bench", default="build/tools/bench/tundra-bench")
    s.add_argument("--jsonl", required=True)
    p = sub.add_parser("plot")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="Delivery latency against offered load")
    a = ap.parse_args()
    if a.cmd == "sweep":
        with open(a.jsonl, "a", encoding="utf-8") as out:
            for rate in (int(r) for r in a.rates.split(",")):
                per_pair = max(1, int(rate * a.seconds / a.pairs))
                cmd = [a.bench, "--port", str(a.port), "--json", "pairs", "--pairs", str(a.pairs),
                       "--messages", str(per_pair), "--rate", str(rate)]
                res = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    sys.exit(f"latency_plot: {' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
                out.write(res.stdout)
                print(res.stdout.strip())
        return
    series = load_points(a.inputs)
    if not series:
        sys.exit("latency_plot: no latency points in the inputs")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(svg(series, a.title))
    print(f"wrote {a.out}: {', '.join(f'{k} ({len(v)} points)' for k, v in sorted(series.items()))}")


if __name__ == "__main__":
    main()
