#!/usr/bin/env python3
"""bench/bench_plot.py — draws a bench/run result (its JSON lines) as an SVG: one row of bars
per cell, one bar per server, the median over the repeats of the server's CPU time per message
(throughput cells) or its RSS per idle connection (idle cells), each row scaled to its own
largest bar and labelled with the value. Lower is better everywhere. Standard library only.

usage: bench/bench_plot.py RESULTS.jsonl OUT.svg [--title TEXT]
"""
import html
import json
import statistics
import sys

COLORS = {"weft": "#1f77b4", "weftu": "#17becf", "weft2": "#6baed6", "lws": "#d62728", "node": "#2ca02c",
          "py": "#9467bd", "raw": "#7f7f7f"}
NAMES = {"weft": "weft", "weftu": "weft, io_uring", "weft2": "weft, 2 workers", "lws": "libwebsockets", "node": "Node ws",
         "py": "Python websockets", "raw": "raw-byte echo (limit)"}
LABELS = {
    "echo64": "echo 64 B × 100 × 8", "echo64tls": "echo 64 B, TLS", "echo64w2": "echo 64 B, workers",
    "echo1k": "echo 1 KiB × 1000", "echo1kdeflate": "echo 1 KiB JSON, deflate",
    "echo16k": "echo 16 KiB × 100", "echo64rate": "echo 64 B at a fixed rate",
    "room100": "room 100 / 10", "room100w2": "room 100 / 10, workers", "hub100": "hub 100 / 10",
    "room1000": "room 1000", "connect": "connect + close",
    "idle10k": "idle 10k", "idle10ktls": "idle 10k, TLS", "idle10kdeflate": "idle 10k, deflate",
    "idle50k": "idle 50k",
}
W = 980
LEFT = 230  # cell labels
BAR_H, BAR_GAP, ROW_GAP = 13, 2, 12
PLOT_W = 560


def medians(rows):
    """{(cell, server): (value, unit)} from the measured repeats: µs per message, or KiB per
    connection for idle cells."""
    acc = {}
    order = []
    for r in rows:
        s = r.get("server") or {}
        idle = r.get("mode") == "idle"
        v = s.get("rss_per_conn_kib") if idle else s.get("cpu_us_per_msg")
        if v is None or r.get("exit", 0) != 0:
            continue
        key = (r["cell"], r["server_name"])
        if key not in acc:
            acc[key] = []
            order.append(key)
        acc[key].append((v, "KiB/conn" if idle else "µs/msg"))
    return order, {k: (statistics.median(x[0] for x in v), v[0][1]) for k, v in acc.items()}


def draw(rows, title):
    """Returns the SVG text for rows (bench/run JSON lines)."""
    order, med = medians(rows)
    cells = []
    for cell, _ in order:
        if cell not in cells:
            cells.append(cell)
    # CPU cells first, idle (memory) cells after, each in run order
    cells.sort(key=lambda c: any(med[k][1] == "KiB/conn" for k in med if k[0] == c))
    y = 70
    out = []
    servers_seen = []
    section = None
    for cell in cells:
        bars = [(srv, med[(cell, srv)]) for c, srv in order if c == cell]
        unit = bars[0][1][1]
        if unit != section:
            if section is not None:
                y += 16
            section = unit
            head = ("server CPU per message, µs (lower is better)" if unit == "µs/msg"
                    else "server RSS per idle connection, KiB (lower is better)")
            out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>'
                       % (LEFT, y, head))
            y += 14
        top = max(v for _, (v, _) in bars) or 1
        row_h = len(bars) * (BAR_H + BAR_GAP)
        out.append('<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>'
                   % (LEFT - 10, y + row_h / 2 + 4, html.escape(LABELS.get(cell, cell))))
        for srv, (v, _) in bars:
            if srv not in servers_seen:
                servers_seen.append(srv)
            w = max(1.0, PLOT_W * v / top)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: '
                       '%.3g %s</title></rect>'
                       % (LEFT, y, w, BAR_H, COLORS.get(srv, "#8c564b"), html.escape(cell),
                          html.escape(NAMES.get(srv, srv)), v, unit))
            out.append('<text x="%.1f" y="%d" font-size="11">%s</text>'
                       % (LEFT + w + 4, y + BAR_H - 2, "%.3g" % v if v < 100 else "%.0f" % v))
            y += BAR_H + BAR_GAP
        y += ROW_GAP
    # legend
    lx, ly = LEFT, 48
    for srv in servers_seen:
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (lx, ly - 10, COLORS.get(srv, "#8c564b")))
        name = NAMES.get(srv, srv)
        out.append('<text x="%d" y="%d" font-size="12">%s</text>' % (lx + 16, ly, html.escape(name)))
        lx += 30 + 7 * len(name)
    h = y + 20
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif">' % (W, h, W, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>'
           % (LEFT, html.escape(title))]
    return "\n".join(svg + out + ["</svg>"]) + "\n"


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.split("usage: ")[1].strip(), file=sys.stderr)
        return 2
    title = "weft: make bench (medians)"
    if "--title" in argv:
        i = argv.index("--title")
        title = argv[i + 1]
    rows = [json.loads(l) for l in open(argv[1]) if l.strip()]
    with open(argv[2], "w") as f:
        f.write(draw(rows, title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
