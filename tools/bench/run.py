#!/usr/bin/env python3
"""Side-by-side benchmark of libmemberlist (tools/bench/c, through the C ABI) and
hashicorp/memberlist 0.2.2 (tools/bench/go). Python 3 standard library only.

Runs both programs for each preset and N, alternating which goes first, parses their JSON
lines, prints a table (each figure, ours/theirs), draws the convergence curves as SVG and
rewrites the generated part of docs/benchmarks.md. See docs/benchmarks.md for what each figure
means and what limits it.

  tools/bench/run.py                    # full run: N in 8,32,128,512,1024, presets local,lan
  tools/bench/run.py --quick            # N 8,32, local only, short steady phase
  tools/bench/run.py --n 8,32 --study 10   # + convergence study (10 converge runs per variant)
  tools/bench/run.py --soak 2000        # only the soak: ours at 2000, Go at 250,500,1000,2000
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPLS = ("ours", "go")
# Our program in each wire format (--wire): "ours" speaks the native format, "ours-hc"
# hashicorp's own (ml_config_set_wire_format(ML_WIRE_HASHICORP)).
WIRE_IMPL = {"native": "ours", "hashicorp": "ours-hc"}
IMPL_ARGS = {"ours-hc": ["--wire", "hashicorp"]}
SCENARIOS = "converge,broadcast,steady,detect,leave"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
SBEGIN, SEND = "<!-- bench:study:begin -->", "<!-- bench:study:end -->"
KBEGIN, KEND = "<!-- bench:soak:begin -->", "<!-- bench:soak:end -->"
WBEGIN, WEND = "<!-- bench:wire:begin -->", "<!-- bench:wire:end -->"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(build_dir, from_head):
    """Configures and builds the two benchmark programs; returns their paths. from_head builds
    the last commit (exported with git archive) instead of the working tree, which other
    people may be editing."""
    src = ROOT
    if from_head:
        src = os.path.join(build_dir, "src-HEAD")
        subprocess.run(["rm", "-rf", src], check=True)
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        build_dir = os.path.join(build_dir, "HEAD")
    subprocess.run(["cmake", "-S", src, "-B", build_dir, "-DML_BUILD_TESTS=OFF"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j2", "--target", "memberlist-bench",
                    "memberlist-bench-go"], check=True, stdout=subprocess.DEVNULL)
    return programs(build_dir)


def programs(build_dir):
    d = os.path.join(build_dir, "tools", "bench")
    ours = os.path.join(d, "memberlist-bench")
    return {"ours": ours, "ours-hc": ours, "go": os.path.join(d, "memberlist-bench-go")}


def run_one(prog, impl, n, preset, scenarios, timeout, steady, extra=(), soak=0):
    """Runs one program once; returns {scenario: result dict}. A program that overruns its
    whole time box is killed and its missing scenarios are reported as timeouts."""
    cmd = [prog, "--n", str(n), "--preset", preset, "--scenarios", scenarios,
           "--timeout", str(timeout), "--steady", str(steady), *IMPL_ARGS.get(impl, []), *extra]
    box = timeout * len(scenarios.split(",")) + steady + soak + 60 + n * 0.05  # + node creation
    results = {}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=box)
        out = p.stdout
        if p.returncode != 0:
            log(f"  {impl} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        log(f"  {impl} killed after {box:.0f} s")
    for line in out.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("type") == "result":
            results[d["scenario"]] = d
    for sc in scenarios.split(","):
        results.setdefault(sc, {"scenario": sc, "status": "timeout", "note": "program killed"})
    return results


# ---- figures -------------------------------------------------------------------------------

# (label, scenario, field, unit, format)
FIGURES = [
    ("converge", "converge", "seconds", "s", "{:.2f}"),
    ("detect median", "detect", "median", "s", "{:.2f}"),
    ("detect max", "detect", "max", "s", "{:.2f}"),
    ("leave median", "leave", "median", "s", "{:.2f}"),
    ("leave max", "leave", "max", "s", "{:.2f}"),
    ("broadcast max", "broadcast", "max", "s", "{:.3f}"),
    ("CPU", "steady", "cpu_ms_per_node_s", "ms/node/s", "{:.3f}"),
    ("RSS", "steady", "rss_kib_per_node", "KiB/node", "{:.0f}"),
    # RssAnon only: the memory the nodes themselves take, without the pages of program and
    # library code first run during the test (file-backed, shared, paid once per machine).
    ("private RSS", "steady", "anon_kib_per_node", "KiB/node", "{:.0f}"),
    ("wire", "steady", "bytes_per_node_s", "B/node/s", "{:.0f}"),
]


def figure(runs, scenario, field):
    """Median over repetitions of one figure, or a status word if no run produced it."""
    vals, statuses = [], []
    for r in runs:
        d = r.get(scenario, {})
        statuses.append(d.get("status", "missing"))
        v = d.get(field)
        ok = d.get("status") == "ok" or (scenario in ("detect", "leave", "broadcast") and v is not None)
        if ok and isinstance(v, (int, float)):
            vals.append(float(v))
    if vals:
        note = "" if all(s == "ok" for s in statuses) else "*"
        return statistics.median(vals), note
    for s in ("n/a", "timeout", "incomplete", "skipped", "error"):
        if s in statuses:
            return None, s
    return None, "n/a"


HEADINGS = {"ours": "ours", "ours-hc": "ours (hashicorp wire)", "go": "hashicorp"}


def table(results, presets, ns, impls=IMPLS):
    """One row per (N, figure): a column per implementation (Go last), then each of ours
    divided by Go's."""
    ours = [i for i in impls if i != "go"]
    lines = []
    for preset in presets:
        lines.append(f"\n**{preset.upper()} preset**\n")
        ratios = [("ours/theirs" if i == "ours" else f"{HEADINGS[i]}/theirs") for i in ours]
        lines.append("| N | figure | " + " | ".join(HEADINGS[i] for i in ours + ["go"]) + " | " +
                     " | ".join(ratios) + " |")
        lines.append("|---:|---|" + "---:|" * (len(ours) + 1 + len(ratios)))
        for n in ns:
            for label, sc, field, unit, fmt in FIGURES:
                cells, nums = [], {}
                for impl in ours + ["go"]:
                    v, note = figure(results.get((preset, n, impl), []), sc, field)
                    nums[impl] = v
                    cells.append(fmt.format(v) + note if v is not None else note)
                for impl in ours:
                    ok = nums[impl] is not None and nums["go"] not in (None, 0)
                    cells.append(f"{nums[impl] / nums['go']:.3g}" if ok else "–")
                lines.append(f"| {n} | {label} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---- SVG plot ------------------------------------------------------------------------------

COLORS = {"ours": "#1f77b4", "go": "#d62728"}


def svg_plot(results, presets, ns, path):
    """Small multiples: one panel per (preset, N); x = seconds after the joins (log scale,
    0.01..max), y = fraction of (observer, member) pairs known. Solid = ours, dashed = Go;
    every repetition is drawn."""
    pw, ph, ml, mt, mb = 300, 200, 48, 36, 36
    cols, rows = len(ns), len(presets)
    width, height = cols * pw + 20, rows * ph + 40
    tmax = 1.0
    for (p, n, impl), runs in results.items():
        for r in runs:
            for t, _ in r.get("converge", {}).get("curve", []) or []:
                tmax = max(tmax, t)
    lo, hi = math.log10(0.01), math.log10(max(tmax, 1.0) * 1.2)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="10">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="14" font-size="11">Fraction of (observer, member) pairs known vs '
           'seconds after all nodes join one seed (log axis)</text>',
           f'<text x="10" y="28" font-size="11"><tspan fill="{COLORS["ours"]}">solid: libmemberlist'
           f'</tspan>   <tspan fill="{COLORS["go"]}">dashed: hashicorp/memberlist 0.2.2</tspan></text>']
    for ri, preset in enumerate(presets):
        for ci, n in enumerate(ns):
            x0, y0 = 10 + ci * pw + ml, 30 + ri * ph + mt
            w, h = pw - ml - 12, ph - mt - mb
            out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
            out.append(f'<text x="{x0}" y="{y0 - 6}" font-size="11">{preset.upper()}, N={n}</text>')

            def X(t):
                return x0 + (math.log10(max(t, 0.01)) - lo) / (hi - lo) * w

            def Y(f):
                return y0 + h - f * h

            for e in range(-2, int(math.ceil(hi)) + 1):
                if e > hi:
                    break
                xt = X(10 ** e)
                out.append(f'<line x1="{xt:.1f}" y1="{y0}" x2="{xt:.1f}" y2="{y0 + h}" stroke="#eee"/>')
                out.append(f'<text x="{xt:.1f}" y="{y0 + h + 12}" text-anchor="middle">{10 ** e:g}</text>')
            for f in (0, 0.5, 1):
                out.append(f'<text x="{x0 - 4}" y="{Y(f) + 3:.1f}" text-anchor="end">{f:g}</text>')
            out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 26}" text-anchor="middle">seconds</text>')
            for impl in IMPLS:
                for r in results.get((preset, n, impl), []):
                    curve = r.get("converge", {}).get("curve") or []
                    if not curve:
                        continue
                    pts, last = [], None
                    for t, f in curve:  # step function
                        if last is not None:
                            pts.append(f"{X(t):.1f},{Y(last):.1f}")
                        pts.append(f"{X(t):.1f},{Y(f):.1f}")
                        last = f
                    if r["converge"].get("status") != "ok":  # extend to the time box
                        pts.append(f"{X(10 ** hi):.1f},{Y(last):.1f}")
                    dash = ' stroke-dasharray="5,3"' if impl == "go" else ""
                    out.append(f'<polyline fill="none" stroke="{COLORS[impl]}" stroke-width="1.3"'
                               f'{dash} points="{" ".join(pts)}"/>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ---- convergence study ---------------------------------------------------------------------

STUDY_VARIANTS = [
    ("as shipped", []),
    ("proposal emulated: 1 extra push/pull with a random member 2 gossip intervals after join",
     ["--extra-pushpulls", "1"]),
    ("proposal emulated: 3 extra push/pulls at 2, 4, 8 gossip intervals after join",
     ["--extra-pushpulls", "3"]),
    ("RetransmitMult 6 (alive news sent 6x instead of 2x at N<10)", ["--retransmit-mult", "6"]),
]


def study(progs, ns, preset, reps, timeout):
    rows = ["| impl | N | variant | runs | converge median (s) | min | max | runs > 5 s | "
            "known after 1 s (median) | done ≤50 ms after a periodic push/pull |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in ns:
        for label, extra in STUDY_VARIANTS:
            for k, impl in enumerate(IMPLS):
                times, at1, pp, slow = [], [], 0, 0
                for rep in range(reps):
                    r = run_one(progs[impl], impl, n, preset, "converge", timeout, 0, extra)["converge"]
                    t = r.get("seconds") if r.get("status") == "ok" else timeout
                    times.append(t)
                    slow += t > 5
                    c = r.get("curve") or [[0, 0]]
                    at1.append([f for tt, f in c if tt <= 1.0][-1])
                    calls = r.get("pushpull_calls") or []
                    if any(0 <= t - x <= 0.05 for x in calls):
                        pp += 1
                    log(f"  study {impl} N={n} {label[:20]}: {t}")
                rows.append(f"| {impl} | {n} | {label} | {reps} | {statistics.median(times):.2f} | "
                            f"{min(times):.2f} | {max(times):.2f} | {slow} | {statistics.median(at1):.3f} | "
                            f"{pp if impl == 'go' else 'n/a'} |")
    return "\n".join(rows) + "\n"


# ---- soak ----------------------------------------------------------------------------------

def soak(progs, ours_n, go_ns, preset, seconds, go_seconds, timeout, raw):
    """Ours at ours_n; Go at each of go_ns in turn until a run fails (does not converge, or has
    a false failure). Returns the markdown table."""
    rows = ["| impl | N | status | converge (s) | pairs known when joining ended (%) | "
            "false failures (joining / holding) | "
            "suspicions while holding | hold (s) | CPU (cores) | CPU (ms/node/s) | RSS (MiB) | "
            "RSS (KiB/node) | wire (B/node/s) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    plan = [("ours", ours_n)] + [("go", n) for n in go_ns]
    go_failed = False
    for impl, n in plan:
        if impl == "go" and go_failed:
            break
        hold = seconds if impl == "ours" else go_seconds
        log(f"soak {impl} N={n}, hold {hold:g} s")
        extra = ("--soak", str(hold))
        r = run_one(progs[impl], impl, n, preset, "soak", timeout, 0, extra, soak=hold)["soak"]
        if raw:
            raw.write(json.dumps(dict(r, impl=impl, preset=preset, n=n)) + "\n")
            raw.flush()
        st = r.get("status")
        log(f"    {st}: converge {r.get('converge_s')} s, false failures "
            f"{r.get('false_failures_converge')}/{r.get('false_failures')}, CPU {r.get('cpu_cores')} cores")
        if impl == "go" and st != "ok":
            go_failed = True

        def f(key, fmt="{:.2f}", scale=1.0):
            v = r.get(key)
            return fmt.format(v * scale) if isinstance(v, (int, float)) else "–"
        rows.append(f"| {impl} | {n} | {st} | {f('converge_s')} | {f('known_fraction_converged', '{:.1f}', 100)} | "
                    f"{f('false_failures_converge', '{:.0f}')} / {f('false_failures', '{:.0f}')} | "
                    f"{f('suspicions', '{:.0f}')} | {f('hold_s', '{:.0f}')} | {f('cpu_cores')} | "
                    f"{f('cpu_ms_per_node_s', '{:.3f}')} | {f('rss_kib', '{:.0f}', 1 / 1024)} | "
                    f"{f('rss_kib_per_node', '{:.0f}')} | {f('bytes_per_node_s', '{:.0f}')} |")
    return "\n".join(rows) + "\n"


# ---- docs ----------------------------------------------------------------------------------

def replace_section(path, begin, end, body):
    text = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{begin}\n{body}{end}{tail}")


def load_raw(path):
    """Results, presets and sizes from a --raw file (one result per line)."""
    runs, meta = {}, {}
    for line in open(path):
        d = json.loads(line)
        if d.get("type") == "meta":
            meta = d
            continue
        runs.setdefault((d["preset"], d["n"], d["impl"], d.get("rep", 0)), {})[d["scenario"]] = d
    results = {}
    for (preset, n, impl, _), r in sorted(runs.items()):
        results.setdefault((preset, n, impl), []).append(r)
    presets = list(dict.fromkeys(k[0] for k in results))
    ns = sorted({k[1] for k in results})
    return results, presets, ns, meta


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine():
    load = os.getloadavg()
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
            f"load average {load[0]:.2f} at start, {time.strftime('%Y-%m-%d %H:%M')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="8,32,128,512,1024", help="comma-separated cluster sizes")
    ap.add_argument("--presets", default="local,lan")
    ap.add_argument("--scenarios", default=SCENARIOS)
    ap.add_argument("--timeout", type=float, default=120, help="time box per scenario (s)")
    ap.add_argument("--steady", type=float, default=30, help="idle seconds measured by steady")
    ap.add_argument("--repeat", type=int, default=1, help="runs per (preset, N, impl)")
    ap.add_argument("--broadcasts", type=int, default=1, metavar="K",
                    help="the broadcast scenario queues K messages at once and counts the (node, "
                         "message) deliveries still missing one push/pull interval later")
    ap.add_argument("--quick", action="store_true", help="N 8,32, local preset, steady 5 s, timeout 60 s")
    ap.add_argument("--study", type=int, default=0, metavar="K",
                    help="also run the convergence study: K converge-only runs per variant (local preset)")
    ap.add_argument("--study-n", default="8,32")
    ap.add_argument("--study-only", action="store_true", help="run only the convergence study")
    ap.add_argument("--soak", type=int, default=0, metavar="N",
                    help="run only the soak: ours at N nodes, Go at --soak-go-n (ascending, up to N) "
                         "until it fails")
    ap.add_argument("--soak-go-n", default="250,500,1000,2000")
    ap.add_argument("--soak-seconds", type=float, default=300, help="how long the soak holds (s)")
    ap.add_argument("--soak-go-seconds", type=float, default=None,
                    help="how long Go's soaks hold (s; default --soak-seconds)")
    ap.add_argument("--soak-timeout", type=float, default=600, help="time box to converge in the soak (s)")
    ap.add_argument("--wire", default="native",
                    help="our wire formats to run, comma-separated: native, hashicorp; any but "
                         "native alone writes the 'hashicorp wire format' section of the docs")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--from-head", action="store_true",
                    help="build the last commit, not the working tree (when others are mid-edit)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md and the plot")
    ap.add_argument("--raw", default=None, help="also write every result as JSON lines here")
    ap.add_argument("--from-raw", default=None, metavar="FILE",
                    help="run nothing: rebuild the table, plot and docs from a --raw file")
    a = ap.parse_args()
    if a.quick:
        a.n, a.presets, a.steady, a.timeout = "8,32", "local", 5, 60
    ns = [int(x) for x in a.n.split(",") if x]
    if a.broadcasts > 1:
        FIGURES.insert(FIGURES.index(("broadcast max", "broadcast", "max", "s", "{:.3f}")) + 1,
                       ("broadcast misses", "broadcast", "misses", f"of {a.broadcasts} x (N-1)", "{:.0f}"))
    presets = [p for p in a.presets.split(",") if p]
    wires = [w for w in a.wire.split(",") if w]
    if any(w not in WIRE_IMPL for w in wires):
        ap.error("--wire takes native and/or hashicorp")
    run_impls = tuple(WIRE_IMPL[w] for w in wires) + ("go",)

    if a.from_raw:
        results, presets, ns, meta = load_raw(a.from_raw)
        a.study_only, a.study = True, 0
        progs = None
    elif a.no_build:
        progs = programs(os.path.join(a.build_dir, "HEAD") if a.from_head else a.build_dir)
    else:
        progs = build(a.build_dir, a.from_head)
    started = machine()
    if not a.from_raw:
        results = {}
    cmd = "tools/bench/run.py " + " ".join(sys.argv[1:])
    if a.from_raw:  # describe the run that produced the file
        cmd, started = meta.get("cmd", cmd), meta.get("machine", "?")
        a.timeout, a.steady, a.repeat = meta.get("timeout", a.timeout), meta.get("steady", a.steady), \
            meta.get("repeat", a.repeat)
    raw = open(a.raw, "w") if a.raw else None
    if raw:
        raw.write(json.dumps({"type": "meta", "cmd": cmd, "machine": started, "timeout": a.timeout,
                              "steady": a.steady, "repeat": a.repeat}) + "\n")
    if a.soak:
        go_ns = [int(x) for x in a.soak_go_n.split(",") if x and int(x) <= a.soak]
        go_hold = a.soak_seconds if a.soak_go_seconds is None else a.soak_go_seconds
        tbl = soak(progs, a.soak, go_ns, presets[0], a.soak_seconds, go_hold, a.soak_timeout, raw)
        print(tbl)
        if not a.no_docs:
            replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), KBEGIN, KEND,
                            f"\nGenerated by `{cmd.strip()}` on {started}, {cpu_model()}; preset "
                            f"{presets[0]}, hold {a.soak_seconds:g} s (Go: {go_hold:g} s), converge time box "
                            f"{a.soak_timeout:g} s.\n\n{tbl}\n")
        return
    order = 0
    for preset in ([] if a.study_only else presets):
        for n in ns:
            for rep in range(a.repeat):
                # Alternate which program runs first, so slow drift hurts both alike.
                impls = run_impls if order % 2 == 0 else run_impls[::-1]
                order += 1
                for impl in impls:
                    log(f"{preset} N={n} rep {rep + 1}/{a.repeat}: {impl}")
                    r = run_one(progs[impl], impl, n, preset, a.scenarios, a.timeout, a.steady,
                                extra=["--broadcasts", str(a.broadcasts)] if a.broadcasts > 1 else [])
                    results.setdefault((preset, n, impl), []).append(r)
                    if raw:
                        for d in r.values():
                            raw.write(json.dumps(dict(d, impl=impl, preset=preset, n=n, rep=rep)) + "\n")
                    log("    " + ", ".join(f"{s}={d.get('seconds', d.get('status'))}"
                                           for s, d in r.items() if s != "steady"))
    if a.from_raw:
        run_impls = tuple(i for i in ("ours", "ours-hc", "go") if any(k[2] == i for k in results))
    tbl = table(results, presets, ns, run_impls)
    if results:
        print(tbl)
    body = (f"\nGenerated by `{cmd.strip()}` on {started}; time box {a.timeout:g} s per scenario, "
            f"steady phase {a.steady:g} s, {a.repeat} run(s) per cell (median shown). "
            "`*` = at least one run did not finish (timeout/incomplete); a word instead of a number "
            "means no run produced the figure.\n" + tbl +
            "\n![convergence curves](benchmarks-convergence.svg)\n\n")
    if run_impls != IMPLS and not a.no_docs and (a.from_raw or not a.study_only):
        replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), WBEGIN, WEND, body.replace(
            "\n![convergence curves](benchmarks-convergence.svg)\n", ""))
    elif not a.no_docs and (a.from_raw or not a.study_only):
        svg_plot(results, presets, ns, os.path.join(ROOT, "docs", "benchmarks-convergence.svg"))
        replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), BEGIN, END, body)
    if a.study:
        sns = [int(x) for x in a.study_n.split(",") if x]
        st = study(progs, sns, "local", a.study, min(a.timeout, 60))
        print(st)
        if not a.no_docs:
            replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), SBEGIN, SEND,
                            f"\nGenerated by `{cmd.strip()}` on {started}.\n\n{st}\n")


if __name__ == "__main__":
    main()
