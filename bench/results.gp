# Made by tests/bench/collect.py: gnuplot results.gp > results.svg
set terminal svg size 1100,420 dynamic noenhanced font "sans,11" background "white"
set multiplot layout 1,2
set title "first result with min_processes 0 (cold start)"
set xlabel "ms (log scale)"
set ylabel "fraction of tries"
set logscale x
set yrange [0:1]
set key bottom right
set grid
plot "cold_start.dat" index 0 with steps lw 2 title "gdlua (wake-up sentinels)", \
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
