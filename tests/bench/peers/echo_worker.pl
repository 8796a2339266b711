#!/usr/bin/perl
# echo_worker.pl PORT FUNCTION: the echo job on Perl's Gearman::Worker
# (Debian libgearman-client-perl); for bench_echo.
use strict;
use warnings;
use Gearman::Worker;

my ($port, $function) = @ARGV;
my $w = Gearman::Worker->new(job_servers => ["127.0.0.1:$port"]);
$w->register_function($function => sub { $_[0]->arg });
$w->work while 1;
