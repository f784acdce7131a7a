#!/usr/bin/env python3
"""The post-join burst in the simulator: N nodes (Local preset) all join one seed at once,
with post_join_push_pulls = 3 and = 0 (the reference's behaviour), over many seeds.

    python3 tools/sim/burst_study.py BUILD_DIR OUT_DIR [--seeds 50] [--nodes 8,32]

Runs BUILD_DIR/tools/sim/memberlist-sim once per (N, knob, seed); prints convergence time
(median, 90th percentile, max, runs slower than one push/pull interval) per (N, knob);
writes the mean fraction of (observer, member) pairs known against time per (N, knob) as
OUT_DIR/burst-N<n>-k<knob>.csv, and the two SVG plots OUT_DIR/burst-short.svg (first
1.5 s) and OUT_DIR/burst-long.svg (35 s) with tools/sim/plot.py. Standard library only.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PUSH_PULL_INTERVAL = 15.0  # Local preset
STEP = 0.01                # curve sampling (s)
T_END = 35.0


def run(sim, n, knob, seed, curve):
    out = subprocess.run([sim, "--nodes", str(n), "--preset", "local", "--scenario", "converge",
                          "--stagger", "0", "--burst", str(knob), "--seed", str(seed),
                          "--sample", str(STEP * 1000), "--curve", curve],
                         check=True, capture_output=True, text=True).stdout
    t = float(re.search(r"convergence: ([0-9.]+) s", out).group(1))
    pts = []
    with open(curve) as f:
        for line in f:
            if line[0].isdigit():
                a, b = line.strip().split(",")
                pts.append((float(a), float(b)))
    return t, pts


def on_grid(pts):
    """Fraction known at each grid step (1.0 after convergence)."""
    grid, j, last = [], 0, 0.0
    for k in range(int(T_END / STEP) + 1):
        t = k * STEP
        while j < len(pts) and pts[j][0] <= t + 1e-9:
            last = pts[j][1]
            j += 1
        grid.append(1.0 if j >= len(pts) and last >= 1.0 else last)
    return grid


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    build, out_dir = argv[1], argv[2]
    seeds, sizes = 50, [8, 32]
    if "--seeds" in argv:
        seeds = int(argv[argv.index("--seeds") + 1])
    if "--nodes" in argv:
        sizes = [int(x) for x in argv[argv.index("--nodes") + 1].split(",")]
    sim = os.path.join(build, "tools", "sim", "memberlist-sim")
    os.makedirs(out_dir, exist_ok=True)
    files = []
    print(f"| N | post_join_push_pulls | runs | converge median (s) | p90 | max | runs > {PUSH_PULL_INTERVAL:g} s | known after 1 s (mean) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for knob in (3, 0):
                times, total = [], None
                for seed in range(1, seeds + 1):
                    t, pts = run(sim, n, knob, seed, os.path.join(tmp, "c.csv"))
                    times.append(t)
                    g = on_grid(pts)
                    total = g if total is None else [a + b for a, b in zip(total, g)]
                mean = [v / seeds for v in total]
                slow = sum(1 for t in times if t > PUSH_PULL_INTERVAL)
                print(f"| {n} | {knob} | {seeds} | {pct(times, 0.5):.2f} | {pct(times, 0.9):.2f} | {max(times):.2f} "
                      f"| {slow} | {mean[int(1.0 / STEP)]:.4f} |")
                path = os.path.join(out_dir, f"burst-N{n}-k{knob}.csv")
                label = f"N={n}, post_join_push_pulls={knob}, mean of {seeds} seeds".replace(" ", "_")
                with open(path, "w") as f:
                    f.write(f"# scenario=converge nodes={n} label={label}\nt,fraction\n")
                    for k, v in enumerate(mean):
                        f.write(f"{k * STEP:.3f},{v:.6f}\n")
                files.append(path)
    plot = os.path.join(HERE, "plot.py")
    title = "Local preset, all nodes join one seed at once: (observer, member) pairs known"
    subprocess.run([sys.executable, plot, os.path.join(out_dir, "burst-short.svg"), *files,
                    "--no-model", "--tmax", "1.5", "--ymin", "0.9", "--title", title + " (first 1.5 s)"], check=True)
    subprocess.run([sys.executable, plot, os.path.join(out_dir, "burst-long.svg"), *files,
                    "--no-model", "--ymin", "0.9", "--title", title], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
