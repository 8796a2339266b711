#!/usr/bin/perl
# convert_worker.pl PORT PREFIX: the seed's worker (Imager behind
# gearmand), on Gearman::Worker as Gearman::XS is not in Debian:
# PREFIXconvert_to_jpeg and PREFIXconvert_to_gif; for bench_image.
use strict;
use warnings;
use Gearman::Worker;
use Imager;

my ($port, $prefix) = @ARGV;
my $w = Gearman::Worker->new(job_servers => ["127.0.0.1:$port"]);

sub _convert {
    my ($in_data, $format) = @_;
    my $img = Imager->new();
    my $out_data;
    $img->read(data => $in_data) or die;
    $img->write(data => \$out_data, type => $format) or die;
    return $out_data;
}
$w->register_function("${prefix}convert_to_jpeg" => sub { _convert(${ $_[0]->argref }, 'jpeg') });
$w->register_function("${prefix}convert_to_gif"  => sub { _convert(${ $_[0]->argref }, 'gif') });
$w->work while 1;
