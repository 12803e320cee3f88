#!/usr/bin/env python3
"""PNG charts of the comparison, drawn by gnuplot from what tools/bench_report.py wrote:
    summary.png   every row, each column's median relative to weft's best (log scale)
    <row>.png     one row in its own unit, bars at the median, whiskers from min to max
    bench_charts.py <results dir>
"""
import csv
import pathlib
import subprocess
import sys

from bench_report import COLUMNS, ROWS

COLORS = ["#1f77b4", "#0b3d91", "#7fbf3f", "#2e7d32", "#9a9a9a", "#e08a00", "#6fc2d8", "#00838f",
          "#e27fd0", "#b5179e"]


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def summary(results):
    labels = dict(COLUMNS)
    plots = []
    for i, (column, _) in enumerate(COLUMNS):
        using = f"{i + 2}:xtic(1)" if i == 0 else f"{i + 2}"
        plots.append(f"'{results / 'chart.dat'}' using {using} title '{labels[column]}' lc rgb '{COLORS[i]}'")
    gnuplot(f"""
set terminal pngcairo size 1800,620 font 'DejaVu Sans,11' noenhanced
set output '{results / 'summary.png'}'
set title "Each runtime's cost relative to weft's best figure on the row (1 = weft's best; higher = worse)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.0625:8192]
set grid ytics
set ylabel 'times weft''s best (log)'
set xtics scale 0 font ',10' rotate by 30 right
set key top left horizontal
set datafile missing '?'
plot {', '.join(plots)}, 1 notitle lc rgb '#d62728' lw 1.5
""")


def row_charts(results):
    by_row = {}
    with open(results / "latest.csv") as f:
        for r in csv.DictReader(f):
            by_row.setdefault(r["row"], []).append(r)
    labels = dict(COLUMNS)
    colors = {c: COLORS[i] for i, (c, _) in enumerate(COLUMNS)}
    for row_id, title, unit, higher, *_ in ROWS:
        rows = by_row.get(row_id)
        if not rows:
            continue
        data = results / f"{row_id}.dat"
        with open(data, "w") as f:
            for i, r in enumerate(rows):
                color = int(colors[r["column"]][1:], 16)
                f.write(f'{i} "{labels[r["column"]]}" {r["median"]} {r["min"]} {r["max"]} {color}\n')
        better = "higher is better" if higher else "lower is better"
        meds = [float(r["median"]) for r in rows]
        # Bars that differ by orders of magnitude (a thread per task against a green thread)
        # only read on a log scale.
        scale = "set logscale y\nset yrange [*:*]" if max(meds) > 30 * min(meds) else "set yrange [0:*]"
        gnuplot(f"""
set terminal pngcairo size 760,380 font 'DejaVu Sans,10' noenhanced
set output '{results / (row_id + '.png')}'
set title "{title} ({unit}, {better}; median, whiskers min-max)"
set style fill solid 0.9 border -1
set boxwidth 0.6
{scale}
set grid ytics
set xtics scale 0
unset key
plot '{data}' using 1:3:6:xtic(2) with boxes lc rgb variable, \\
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0
""")
        data.unlink()


def main():
    results = pathlib.Path(sys.argv[1])
    summary(results)
    row_charts(results)


if __name__ == "__main__":
    main()
