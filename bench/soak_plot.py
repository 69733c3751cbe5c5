#!/usr/bin/env python3
"""bench/soak_plot.py — draws a soak CSV (bench/soak) as an SVG: resident memory (MiB) and
open file descriptors over time, one line per server, the warm-up shaded, the baseline and
final windows marked and each tolerance ceiling dashed. Standard library only.

usage: bench/soak_plot.py CSV SVG [--title TEXT] [--warmup SEC]
"""
import csv
import html
import math
import sys

W, H = 960, 660
LEFT, RIGHT, TOP = 80, 170, 70
PANEL_H, GAP = 220, 60
COLORS = {"plain": "#1f77b4", "tls": "#d62728"}


def nice_step(span, ticks=6):
    """Returns a round tick step (1, 2 or 5 times a power of ten) for span."""
    if span <= 0:
        return 1
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt(v):
    """Formats a tick label without useless decimals."""
    return str(int(v)) if float(v).is_integer() else "%.1f" % v


def panel(out, y0, series, t_max, ylabel, marks, warmup, windows):
    """Draws one panel at y0: the axes, the grid, the series {name: [(t, v)]} and the
    horizontal marks [(value, label, color)] (the tolerance ceilings)."""
    x0, x1 = LEFT, W - RIGHT
    vals = [v for pts in series.values() for _, v in pts] + [m[0] for m in marks]
    vmax = max(vals) if vals else 1
    vmax = vmax * 1.08 if vmax > 0 else 1
    step = nice_step(vmax)
    vmax = step * int(vmax / step + 0.999)

    def X(t):
        return x0 + (x1 - x0) * t / t_max if t_max else x0

    def Y(v):
        return y0 + PANEL_H - PANEL_H * v / vmax

    if warmup > 0:
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#eeeeee"/>'
                   % (x0, y0, X(min(warmup, t_max)) - x0, PANEL_H))
        out.append('<text x="%.1f" y="%d" font-size="11" fill="#777">warm-up</text>'
                   % (x0 + 4, y0 + 14))
    for (a, b), name in zip(windows, ("baseline", "final")):
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#2ca02c" '
                   'fill-opacity="0.08"/>' % (X(a), y0, max(X(b) - X(a), 1), PANEL_H))
        out.append('<text x="%.1f" y="%d" font-size="11" fill="#2ca02c">%s</text>'
                   % (X(a) + 4, y0 + 14, name))
    v = 0.0
    while v <= vmax + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   % (x0, Y(v), x1, Y(v)))
        out.append('<text x="%d" y="%.1f" font-size="12" text-anchor="end">%s</text>'
                   % (x0 - 6, Y(v) + 4, fmt(v)))
        v += step
    tstep = nice_step(t_max / 60.0) * 60 if t_max > 600 else nice_step(t_max)
    t = 0.0
    while t <= t_max + 1e-9:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                   % (X(t), y0, X(t), y0 + PANEL_H))
        label = fmt(t / 60.0) if t_max > 600 else fmt(t)
        out.append('<text x="%.1f" y="%d" font-size="12" text-anchor="middle">%s</text>'
                   % (X(t), y0 + PANEL_H + 16, label))
        t += tstep
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>'
               % (x0, y0, x1 - x0, PANEL_H))
    out.append('<text transform="translate(%d,%d) rotate(-90)" font-size="13" '
               'text-anchor="middle">%s</text>'
               % (x0 - 55, y0 + PANEL_H // 2, html.escape(ylabel)))
    out.append('<text x="%d" y="%d" font-size="13" text-anchor="middle">time (%s)</text>'
               % ((x0 + x1) // 2, y0 + PANEL_H + 34, "min" if t_max > 600 else "s"))
    ly = y0 + 10
    for name, pts in series.items():
        color = COLORS.get(name, "#333")
        if pts:
            d = " ".join("%.1f,%.1f" % (X(t), Y(v)) for t, v in pts)
            out.append('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>'
                       % (color, d))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (x1 + 12, ly, x1 + 32, ly, color))
        out.append('<text x="%d" y="%d" font-size="12">%s server</text>'
                   % (x1 + 38, ly + 4, html.escape(name)))
        ly += 18
    for value, label, name in marks:
        color = COLORS.get(name, "#333")
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" '
                   'stroke-dasharray="6,4"/>' % (x0, Y(value), x1, Y(value), color))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-dasharray="4,3"/>'
                   % (x1 + 12, ly, x1 + 32, ly, color))
        out.append('<text x="%d" y="%d" font-size="12">%s %s</text>'
                   % (x1 + 38, ly + 4, html.escape(name), html.escape(label)))
        ly += 18


def read_csv(path):
    """Reads the soak CSV into a list of dicts of floats (empty cells become None)."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) and k != "utc" else v)
                         for k, v in r.items()})
    return rows


def draw(csv_path, svg_path, title, warmup=0.0, windows=(), limits=None, interval=10,
         duration=0.0, note=""):
    """Writes svg_path from csv_path. windows: [(t0, t1)] baseline and final; limits:
    {"rss": {server: MiB}, "fds": {server: count}} tolerance ceilings to draw dashed;
    duration: the time axis' end (default: the last sample); note: a line under the title."""
    rows = read_csv(csv_path)
    t_max = max([r["t_s"] for r in rows] + [1.0, duration])
    limits = limits or {}
    rss, fds = {}, {}
    for name in ("plain", "tls"):
        key = "rss_kib" if name == "plain" else "tls_rss_kib"
        fkey = "fds" if name == "plain" else "tls_fds"
        if rows and key in rows[0]:
            rss[name] = [(r["t_s"], r[key] / 1024.0) for r in rows if r.get(key) is not None]
            fds[name] = [(r["t_s"], r[fkey]) for r in rows if r.get(fkey) is not None]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif">' % (W, H, W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="30" font-size="17" text-anchor="middle">%s</text>'
           % (W // 2, html.escape(title)),
           '<text x="%d" y="50" font-size="12" text-anchor="middle" fill="#555">sampled every '
           '%g s from /proc/PID/status (VmRSS) and /proc/PID/fd; dashed: the tolerance ceiling'
           '</text>' % (W // 2, interval),
           '<text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>'
           % (W // 2, H - 12, html.escape(note))]
    panel(out, TOP, rss, t_max, "resident memory (MiB)",
          [(v, "limit %.1f MiB" % v, n) for n, v in limits.get("rss", {}).items()], warmup,
          windows)
    panel(out, TOP + PANEL_H + GAP, fds, t_max, "open file descriptors",
          [(v, "limit %.0f" % v, n) for n, v in limits.get("fds", {}).items()], warmup, windows)
    out.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    """Command line: CSV SVG [--title T] [--warmup S]. Returns the exit status."""
    args, title, warmup = [], "weft soak", 0.0
    i = 0
    while i < len(argv):
        if argv[i] == "--title" and i + 1 < len(argv):
            title = argv[i + 1]
            i += 1
        elif argv[i] == "--warmup" and i + 1 < len(argv):
            warmup = float(argv[i + 1])
            i += 1
        else:
            args.append(argv[i])
        i += 1
    if len(args) != 2:
        print("usage: bench/soak_plot.py CSV SVG [--title TEXT] [--warmup SEC]", file=sys.stderr)
        return 2
    draw(args[0], args[1], title, warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
