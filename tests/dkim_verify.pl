#!/usr/bin/perl
# Verifies the DKIM signatures of messages with Perl's Mail::DKIM (an implementation
# independent of dkimpy), its DNS lookups answered from the records given here: no
# network. Usage: dkim_verify.pl ZONEFILE MESSAGE...
# ZONEFILE has one "name<TAB>TXT text" line per record. For each message, one line:
# "<result> <number of signatures> <detail>" (the first signature's result).
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS;

my ($zone_file, @messages) = @ARGV;
my %zone;
open my $zone, '<', $zone_file or die "cannot read $zone_file: $!";
while (my $line = <$zone>) {
    chomp $line;
    my ($name, $text) = split /\t/, $line, 2;
    $zone{lc $name} = $text;
}
close $zone;

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        $domain =~ s/\.\z//;
        my $text = $zone{lc $domain};
        return () unless defined $text && $type eq 'TXT';
        # A TXT record holds strings of at most 255 octets; a long key spans several.
        my @strings = unpack('(a255)*', $text);
        return (Net::DNS::RR->new(name => $domain, type => 'TXT', txtdata => [@strings]));
    };
}

for my $file (@messages) {
    my $dkim = Mail::DKIM::Verifier->new();
    open my $fh, '<:raw', $file or die "cannot read $file: $!";
    local $/ = "\n";
    while (my $line = <$fh>) {
        $line =~ s/\r?\n\z/\r\n/;
        $dkim->PRINT($line);
    }
    close $fh;
    $dkim->CLOSE;
    my @signatures = $dkim->signatures;
    my $detail = $dkim->result_detail // '';
    $detail =~ s/\s+/ /g;
    printf "%s %d %s\n", $dkim->result, scalar(@signatures), $detail;
}
