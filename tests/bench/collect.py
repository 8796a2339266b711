#!/usr/bin/env python3
"""collect.py: turns the RESULT and SAMPLE lines of the benchmark's parts
into bench/results.md, bench/results.json and the chart's gnuplot data and
script, driven by goals.tsv (the one list of scenarios and goals) and, for
the image corpus's table (one row per image), corpus.tsv beside it.

    collect.py GOALS RAW OUTDIR [--quick] [--machine TEXT] [--readme README]

RAW holds the parts' output. --quick (ctest) checks that every gdlua
figure the table names is there and writes the files, but judges no
timing. A part names what it does not measure and why in a line
"SKIPPED scenario=S peer=P reason=TEXT" (S or P may be "*": every one;
S also covers S_*): a figure that needs only such figures is shown as
skipped, with the reason, and does not fail --quick (bench_image without
its corpus, a peer that is not installed). --readme replaces the tables between the README's
markers (bench:results, bench:corpus).
"""
import datetime
import json
import os
import re
import sys

FIGURE = re.compile(r"[A-Za-z0-9_]+/[A-Za-z0-9_]+/[A-Za-z0-9_]+")


def parse_raw(path):
    results, samples, skipped = {}, {}, {}
    for line in open(path, encoding="utf-8", errors="replace"):
        kind, _, rest = line.strip().partition(" ")
        if kind not in ("RESULT", "SAMPLE", "SKIPPED"):
            continue
        if kind == "SKIPPED":
            head, _, reason = rest.partition(" reason=")
            kv = dict(f.split("=", 1) for f in head.split() if "=" in f)
            skipped[(kv.get("scenario", "*"), kv.get("peer", "*"))] = reason
            continue
        kv = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        if kind == "RESULT":
            results["%s/%s/%s" % (kv["scenario"], kv["peer"], kv["metric"])] = (float(kv["value"]), kv["unit"])
        else:
            samples.setdefault((kv["scenario"], kv["peer"]), []).append(float(kv["value"]))
    return results, samples, skipped


def skipped_by(expr, results, skipped):
    """The reason a part gave for skipping the figures expr needs and does
    not have, or None when one of them was not skipped (or expr needs
    nothing missing)."""
    whys = []
    for fig in FIGURE.findall(expr):
        if fig in results:
            continue
        sc, peer, _ = fig.split("/")
        why = next((w for (s, p), w in skipped.items()
                    if (s in ("*", sc) or sc.startswith(s + "_")) and p in ("*", peer)), None)
        if why is None:
            return None
        whys.append(why)
    return whys[0] if whys else None


def parse_goals(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        if len(f) != 9:
            sys.exit("collect.py: %s: a row needs 9 tab-separated columns: %s" % (path, line))
        peers = []
        for p in filter(None, f[5].split(";")):
            name, _, expr = p.partition("=")
            peers.append((name, expr))
        rows.append(dict(id=f[0], scenario=f[1], measure=f[2], unit=f[3], gdlua=f[4], peers=peers,
                         better=f[6], goal=f[7], goal_text=f[8]))
    return rows


def value(expr, results):
    """An expression over figures (A / B, A <= 10 and ...), or None when a
    figure it needs is missing."""
    if any(k not in results for k in FIGURE.findall(expr)):
        return None
    try:
        return eval(FIGURE.sub(lambda m: repr(results[m.group(0)][0]), expr), {"__builtins__": {}}, {})
    except ZeroDivisionError:
        return None


def figures(expr, results):
    """The figures of "A | B": a list of floats, or None if one is missing."""
    out = [value(part, results) for part in expr.split("|")]
    return None if None in out else [float(v) for v in out]


def judge(goal, results):
    """True/False, or None when a figure the goal needs is missing."""
    v = value(goal, results) if goal else None
    return None if v is None else bool(v)


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if v == int(v) and a < 1e9:
        return "{:,d}".format(int(v))
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def build(rows, results, skipped):
    table = []
    for r in rows:
        g = figures(r["gdlua"], results)
        peers = []
        for name, expr in r["peers"]:
            peers.append(dict(name=name, figures=figures(expr, results), skipped=skipped_by(expr, results, skipped)))
        measured = [p for p in peers if p["figures"]]
        best = None
        if g and measured:
            pick = max if r["better"] == "higher" else min
            best = pick(measured, key=lambda p: p["figures"][0])
        ratio = g[0] / best["figures"][0] if best and best["figures"][0] else None
        met = judge(r["goal"], results) if g else None
        table.append(dict(id=r["id"], scenario=r["scenario"], measure=r["measure"], unit=r["unit"],
                          gdlua=g, peers=peers, best_peer=best["name"] if best else None,
                          ratio_to_best_peer=ratio, goal=r["goal_text"], goal_expr=r["goal"] or None,
                          met=met, measured=g is not None,
                          skipped=None if g is not None else skipped_by(r["gdlua"], results, skipped)))
    return table


def markdown(table, date, machine):
    out = ["Measured %s on %s (gearmand 1.1.20 on loopback, every peer in the same run)." % (date, machine), "",
           "| scenario | measure | gdlua | peers | ratio to best peer | goal | met |",
           "|---|---|---|---|---|---|---|"]
    for t in table:
        unit = {"": "", "×": "×"}.get(t["unit"], " " + t["unit"])
        if not t["measured"]:
            what = "skipped (%s)" % t["skipped"] if t["skipped"] else "not measured yet"
            out.append("| %s | %s | %s | | | %s | — |" % (t["scenario"], t["measure"], what, t["goal"]))
            continue
        g = " / ".join(fmt(v) for v in t["gdlua"]) + unit
        ps = []
        for p in t["peers"]:
            v = " / ".join(fmt(x) for x in p["figures"]) + unit if p["figures"] else \
                "skipped (%s)" % p["skipped"] if p["skipped"] else "not measured"
            ps.append("%s: %s" % (p["name"], v))
        r = t["ratio_to_best_peer"]
        ratio = ("%.2f" % r if r >= 0.1 else "%.2g" % r) + "× (%s)" % t["best_peer"] if r else "—"
        met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (t["scenario"], t["measure"], g, "; ".join(ps) or "—",
                                                          ratio, t["goal"], met))
    return "\n".join(out) + "\n"


def corpus_rows(path):
    """corpus.tsv: (name, kind, package, how, what) per image."""
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        rows.append(dict(name=f[0], kind=f[1], package=f[2], how=f[4], what=f[5]))
    return rows


def corpus_table(corpus, results):
    """Markdown: one row per image bench_image measured, the synthetic one
    first, then the geometric means; and the rows as data."""
    cols = (("gdlua", "gdlua"), ("floor", "floor"), ("imager_inproc", "Imager"), ("perl_worker", "seed"))
    images = [dict(name="synthetic", kind="photo-like, drawn by bench_image (not in the means)", package="—",
                   how="—", what="")] + corpus
    out = ["| image | kind | pixels, PNG | from | JPEG: " + " / ".join(c[1] for c in cols) + " (ms) | GIF: "
           + " / ".join(c[1] for c in cols) + " (ms) | GIF error: gdlua / Imager |", "|---|---|---|---|---|---|---|"]
    data = []

    def get(key):
        v = results.get(key)
        return v[0] if v else None

    def cells(scen):
        return " / ".join(fmt(get("%s/%s/%s" % (scen, c[0], "ms_per_image" if scen.startswith("img_")
                                                 else "ms_geomean"))) for c in cols)
    for im in images:
        px = get("img_%s_gif/gdlua/pixels" % im["name"])
        if px is None:
            continue
        size = "%.2g MP, %s KB" % (px / 1e6, fmt(get("img_%s_gif/gdlua/png_bytes" % im["name"]) / 1e3))
        err = "%s / %s" % (fmt(get("img_%s_gif/gdlua/mae" % im["name"])),
                           fmt(get("img_%s_gif/imager_inproc/mae" % im["name"])))
        src = im["package"] + ("" if im["how"] in ("copy", "—") else " (%s)" % im["how"])
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (im["name"], im["kind"], size, src,
                                                             cells("img_%s_jpeg" % im["name"]),
                                                             cells("img_%s_gif" % im["name"]), err))
        data.append(dict(name=im["name"], kind=im["kind"], package=im["package"], pixels=px, what=im["what"],
                         jpeg={c[0]: get("img_%s_jpeg/%s/ms_per_image" % (im["name"], c[0])) for c in cols},
                         gif={c[0]: get("img_%s_gif/%s/ms_per_image" % (im["name"], c[0])) for c in cols},
                         mae={"gdlua": get("img_%s_gif/gdlua/mae" % im["name"]),
                              "imager_inproc": get("img_%s_gif/imager_inproc/mae" % im["name"])}))
    if len(data) <= 1:
        return "", data
    out.append("| **geometric mean** (corpus) | | | | %s | %s | |" % (cells("image_corpus_jpeg"),
                                                                    cells("image_corpus_gif")))
    out.append("")
    out.append("gdlua: end to end through gearmand; floor: the same conversion (`gdl_image_convert`, the code "
               "`image.convert` runs) in one C process, no gearmand, no Lua; Imager: in process; seed: the seed's "
               "worker end to end. GIF error: mean absolute error against the input in RGB levels, both "
               "flattened on white.")
    return "\n".join(out) + "\n", data


def chart(outdir, results, samples):
    """Writes results.dat files and results.gp: the cold-start
    distribution (gdlua against polling) and echo jobs/s per process
    count for each peer."""
    with open(outdir + "/cold_start.dat", "w") as f:
        for peer, title in (("gdlua", "gdlua (wake-up sentinels)"), ("polling_5s", "polling every 5 s")):
            v = sorted(samples.get(("cold_start", peer), []))
            f.write("# %s\n" % title)
            for i, x in enumerate(v):
                f.write("%.3f %.4f\n" % (x, (i + 1) / len(v)))
            f.write("\n\n")
    peers = [("plain_c", "plain C"), ("gdlua", "gdlua"), ("php", "PHP gearman"), ("perl", "Perl Gearman::Worker")]
    with open(outdir + "/echo_n.dat", "w") as f:
        f.write("procs " + " ".join('"%s"' % t for _, t in peers) + "\n")
        for n in (1, 2, 4):
            vals = []
            for p, _ in peers:
                v = results.get("echo_%d/%s/jobs_per_s" % (n, p))
                vals.append("%.0f" % v[0] if v else "NaN")
            f.write("%d %s\n" % (n, " ".join(vals)))
    with open(outdir + "/results.gp", "w") as f:
        f.write("""# Made by tests/bench/collect.py: gnuplot results.gp > results.svg
set terminal svg size 1100,420 dynamic noenhanced font "sans,11" background "white"
set multiplot layout 1,2
set title "first result with min_processes 0 (cold start)"
set xlabel "ms (log scale)"
set ylabel "fraction of tries"
set logscale x
set yrange [0:1]
set key bottom right
set grid
plot "cold_start.dat" index 0 with steps lw 2 title "gdlua (wake-up sentinels)", \\
     "cold_start.dat" index 1 with steps lw 2 title "polling every 5 s (Gearman::Driver)"
unset logscale x
set title "echo jobs/s by worker processes"
set xlabel "processes"
set ylabel "jobs/s"
set yrange [0:*]
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set key below horizontal
plot for [i=2:5] "echo_n.dat" using i:xtic(1) title columnheader(i)
unset multiplot
""")


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    machine = "this machine"
    readme = None
    if "--machine" in args:
        machine = args[args.index("--machine") + 1]
    if "--readme" in args:
        readme = args[args.index("--readme") + 1]
    goals, raw, outdir = [a for a in args if not a.startswith("--") and a not in (machine, readme)][:3]
    results, samples, skipped = parse_raw(raw)
    table = build(parse_goals(goals), results, skipped)
    date = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    md = markdown(table, date, machine)
    corpus_md, corpus = corpus_table(corpus_rows(os.path.join(os.path.dirname(goals) or ".", "corpus.tsv")),
                                     results)
    with open(outdir + "/results.md", "w") as f:
        f.write(md)
        if corpus_md:
            f.write("\n### The image corpus, image by image\n\n" + corpus_md)
    with open(outdir + "/results.json", "w") as f:
        json.dump(dict(date=date, machine=machine, quick=quick, command="bash tests/bench/run.sh", rows=table, corpus=corpus,
                       results={k: dict(value=v[0], unit=v[1]) for k, v in sorted(results.items())},
                       samples={"%s/%s" % k: v for k, v in sorted(samples.items())}), f, indent=1,
                  ensure_ascii=False)
        f.write("\n")
    chart(outdir, results, samples)
    if readme:
        text = open(readme, encoding="utf-8").read()
        begin, end = "<!-- bench:results begin -->", "<!-- bench:results end -->"
        if begin not in text or end not in text:
            sys.exit("collect.py: %s has no %s ... %s markers" % (readme, begin, end))
        text = text[:text.index(begin) + len(begin)] + "\n" + md + text[text.index(end):]
        begin, end = "<!-- bench:corpus begin -->", "<!-- bench:corpus end -->"
        if corpus_md and begin in text and end in text:
            text = text[:text.index(begin) + len(begin)] + "\n" + corpus_md + text[text.index(end):]
        open(readme, "w", encoding="utf-8").write(text)
    missing = [t["id"] for t in table if not t["measured"] and not t["skipped"]]
    for t in table:
        if t["skipped"]:
            print("collect.py: skipped: %s (%s)" % (t["id"], t["skipped"]), file=sys.stderr)
    print(md)
    if corpus_md:
        print(corpus_md)
    if missing:
        print("collect.py: not measured: %s" % ", ".join(missing), file=sys.stderr)
        if quick:
            return 1
    if not samples.get(("cold_start", "gdlua")):
        print("collect.py: no cold-start samples", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
