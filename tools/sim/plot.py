#!/usr/bin/env python3
"""Plots memberlist-sim curves (--curve FILE.csv) as one SVG, next to SWIM's prediction.

    python3 tools/sim/plot.py OUT.svg CURVE.csv [CURVE.csv ...] [--title TEXT] [--no-model]
                              [--tmax SECONDS] [--ymin FRACTION]

Each CSV starts with a '# scenario=... nodes=N fanout=B gossip_interval=G retransmit_mult=M'
line, then 't,fraction' rows. For dissemination curves the model is SWIM's mean-field
infection-style spread (Das, Gupta, Motivala 2002, sec. 4.1): each round of G seconds every
node that has the news and has not used up its retransmissions sends it to B random others,
so the fraction x that has it grows as x' = x + (1-x)(1 - exp(-B a)), a = fraction still
transmitting; it reaches all but one node after about log(N)/log(B+1) + ln(N)/B rounds,
i.e. O(log N). The dotted vertical line marks that O(log N) time. Standard library only.
"""
import csv
import math
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def read(path):
    meta, pts = {}, []
    with open(path) as f:
        first = f.readline()
        if first.startswith("#"):
            for kv in first[1:].split():
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    meta[k] = v
            # "what=" is free text: keep the rest of the line.
            if "what=" in first:
                meta["what"] = first.split("what=", 1)[1].strip()
        else:
            f.seek(0)
        for row in csv.DictReader(f):
            pts.append((float(row["t"]), float(row["fraction"])))
    return meta, pts


def retransmit_limit(mult, n):
    return mult * math.ceil(math.log10(n + 1))


def swim_model(n, fanout, interval, mult, t_end, known=None):
    """Mean-field infection with a retransmit limit: (t, fraction) per gossip round. The
    limit comes from the number of members a node knows (`known`, default n)."""
    rounds_active = max(1, math.ceil(retransmit_limit(mult, known or n) / fanout))
    new = [1.0 / n]  # fraction newly infected in each round
    x = 1.0 / n
    pts = [(0.0, 0.0), (interval, x)]  # the origin gets the news at its first round
    r = 1
    while r * interval < t_end and x < 1 - 0.5 / n:
        active = sum(new[-rounds_active:])
        gained = (1 - x) * (1 - math.exp(-fanout * active))
        new.append(gained)
        x += gained
        r += 1
        pts.append((r * interval, min(1.0, x)))
    return pts


def log_n_time(n, fanout, interval):
    return interval * (math.log(n) / math.log(fanout + 1) + math.log(n) / fanout)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    out, args = argv[1], argv[2:]
    title, model, tmax_arg, ymin = None, True, None, 0.0
    files = []
    i = 0
    while i < len(args):
        if args[i] == "--title" and i + 1 < len(args):
            title = args[i + 1]
            i += 2
        elif args[i] == "--tmax" and i + 1 < len(args):
            tmax_arg = float(args[i + 1])
            i += 2
        elif args[i] == "--ymin" and i + 1 < len(args):
            ymin = float(args[i + 1])
            i += 2
        elif args[i] == "--no-model":
            model = False
            i += 1
        else:
            files.append(args[i])
            i += 1
    series = [(p,) + read(p) for p in files]
    if tmax_arg:
        series = [(p, m, [pt for pt in pts if pt[0] <= tmax_arg]) for p, m, pts in series]
    t_max = max((pts[-1][0] for _, _, pts in series if pts), default=1.0) or 1.0
    lines = []
    for idx, (path, meta, pts) in enumerate(series):
        n = int(meta.get("nodes", "0") or 0)
        label = f"{meta.get('scenario', path)}, N={n}"
        if meta.get("view", "all") != "all":
            label += f" (view {meta['view']})"
        if meta.get("label"):
            label = meta["label"].replace("_", " ")
        lines.append((label, pts, COLORS[idx % len(COLORS)], ""))
        if model and meta.get("scenario") == "disseminate" and n > 1:
            fanout = int(meta.get("fanout", 3))
            g = float(meta.get("gossip_interval", 0.2))
            mult = int(meta.get("retransmit_mult", 4))
            view = meta.get("view", "all")
            m = swim_model(n, fanout, g, mult, t_max * 2, None if view == "all" else int(view) + 1)
            if not tmax_arg:
                t_max = max(t_max, m[-1][0])
            lines.append((f"SWIM mean-field model, N={n}, fanout {fanout}", m, COLORS[idx % len(COLORS)], "6,4"))
            lines.append(("@logn", [(log_n_time(n, fanout, g), 0)], COLORS[idx % len(COLORS)], "2,3"))

    W, L, R, T = 760, 60, 20, 40
    B = 76 + 16 * sum(1 for label, *_ in lines if label != "@logn")
    H = 320 + B
    pw, ph = W - L - R, H - T - B
    sx = lambda t: L + pw * t / t_max
    sy = lambda f: T + ph * (1 - (max(f, ymin) - ymin) / (1 - ymin))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    if title:
        svg.append(f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>')
    for k in range(6):
        f = ymin + (1 - ymin) * k / 5
        svg.append(f'<line x1="{L}" y1="{sy(f):.1f}" x2="{W - R}" y2="{sy(f):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{L - 6}" y="{sy(f) + 4:.1f}" text-anchor="end">{f:.3g}</text>')
    step = 10 ** math.floor(math.log10(t_max / 2)) if t_max > 0 else 1
    while t_max / step > 10:
        step *= 2
    t = 0.0
    while t <= t_max + 1e-9:
        svg.append(f'<line x1="{sx(t):.1f}" y1="{T}" x2="{sx(t):.1f}" y2="{T + ph}" stroke="#eee"/>')
        svg.append(f'<text x="{sx(t):.1f}" y="{T + ph + 16}" text-anchor="middle">{t:g}</text>')
        t += step
    svg.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    svg.append(f'<text x="{L + pw / 2}" y="{T + ph + 34}" text-anchor="middle">virtual time (s)</text>')
    svg.append(f'<text transform="translate(16,{T + ph / 2}) rotate(-90)" text-anchor="middle">fraction that knows</text>')
    legend_y = T + ph + 52
    for label, pts, color, dash in lines:
        if label == "@logn":
            x = sx(pts[0][0])
            svg.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" stroke="{color}" stroke-dasharray="{dash}"/>')
            continue
        # Step curve: a value holds until the next sample.
        d, prev = [], None
        for t, f in pts:
            if prev is not None:
                d.append(f"L{sx(t):.1f},{sy(prev):.1f}")
            d.append(("M" if prev is None else "L") + f"{sx(t):.1f},{sy(f):.1f}")
            prev = f
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        svg.append(f'<path d="{" ".join(d)}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
        svg.append(f'<line x1="{L}" y1="{legend_y - 4}" x2="{L + 30}" y2="{legend_y - 4}" stroke="{color}" stroke-width="2"{dash_attr}/>')
        svg.append(f'<text x="{L + 36}" y="{legend_y}">{label}</text>')
        legend_y += 16
    if any(label == "@logn" for label, *_ in lines):
        svg.append(f'<text x="{L + 36}" y="{legend_y}">dotted vertical: log(N)/log(fanout+1) + ln(N)/fanout rounds (O(log N))</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
