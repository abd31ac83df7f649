# The HTML report in a real browser: headless Chromium (Debian's chromium, installed by
# scripts/install-deps.sh) renders the report of sample data with 10,000 migration runs and
# 10,000 maintenance actions, a failed and a rolled-back migration and a table named
# <script>alert(1)</script>.  The page must log nothing to the console (it has no scripts,
# and its Content-Security-Policy would report anything loaded from elsewhere), its DOM must
# hold every section and chart with title, desc and axis labels, the table name must be
# text, and the screenshot must be a real picture.  A page with a console error shows that
# the console check can fail.  The screenshot stays in the test's output directory.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use File::Path qw(make_path);

my $chromium = (grep { -x $_ } qw(/usr/bin/chromium /usr/bin/chromium-browser))[0];
ok($chromium, 'chromium is installed (scripts/install-deps.sh installs it)')
  or BAIL_OUT('chromium is missing: run scripts/install-deps.sh as root');

my $node = new_virtuoso_node('report', "autovacuum = off\n");
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

# ---- sample data ----------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer int, status text, note text);
INSERT INTO public.orders SELECT g, g % 500, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'open' END, 'n' || g
FROM generate_series(1, 20000) g;
CREATE TABLE public."<script>alert(1)</script>" (id int);
INSERT INTO public."<script>alert(1)</script>" SELECT generate_series(1, 100);
CREATE INDEX orders_note_idx ON public.orders (note);
ANALYZE;
SELECT count(*) FROM public.orders WHERE customer = 7;
});
$node->safe_psql('postgres', q{
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_region',
    'ALTER TABLE public.orders ADD COLUMN region text', 'ALTER TABLE public.orders DROP COLUMN region');
SELECT status FROM virtuoso.execute_rollback_with_backup('add_region', false, 'not needed <after all>');
DELETE FROM public.orders WHERE id % 4 = 0;
SELECT pg_stat_force_next_flush();
});
$node->psql('postgres', q{SELECT virtuoso.execute_migration_with_monitoring('bad_cast',
    'ALTER TABLE public.orders ALTER COLUMN status TYPE int USING status::int')});
$node->safe_psql('postgres', 'SELECT count(*) FROM virtuoso.perform_maintenance_if_needed()');
my $rows_sql = "$ENV{VIRTUOSO_REPO}/test/bench/report_rows.sql";
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'rows=10000', '-d',
    $node->connstr('postgres'), '-f', $rows_sql ], 'sample log rows (10,000 migrations and maintenance actions)');

# ---- the report ---------------------------------------------------------------------------
my $out = "$PostgreSQL::Test::Utils::tmp_check/report";
make_path($out);
my ($rc, $html, $err) = $node->psql('postgres', 'SELECT virtuoso.report_html()',
    extra_params => [ '-A', '-t' ]);
is($rc, 0, 'report_html() from psql') or diag($err);
# a second and third call in the same session (a returned page once lived in freed memory)
is($node->safe_psql('postgres', q{SELECT length(virtuoso.report_html()) > 0,
    length(virtuoso.report_html('1 day')) > 0, length(virtuoso.report_html()) > 0}), 't|t|t',
    'several calls in one session');
open(my $fh, '>', "$out/report.html") or die "cannot write $out/report.html: $!";
print $fh $html;
close $fh;

# Runs chromium headless on a file; returns (stdout, stderr).
sub chromium
{
    my ($file, @args) = @_;
    my $profile = PostgreSQL::Test::Utils::tempdir;
    my ($stdout, $stderr);
    IPC::Run::run([ $chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-extensions', "--user-data-dir=$profile", '--enable-logging=stderr', '--v=0',
        @args, "file://$file" ], '>', \$stdout, '2>', \$stderr, IPC::Run::timeout(120));
    return ($stdout, $stderr);
}
# Console messages as chromium's log writes them ("INFO:CONSOLE(1)" / "INFO:CONSOLE:1").
sub console_lines { return grep { /:CONSOLE[(:]/ } split /\n/, $_[0]; }

# the console check can fail
{
    my $bad = "$out/console_error.html";
    open(my $b, '>', $bad) or die;
    print $b '<!DOCTYPE html><html><body><p>x</p><script>console.error("report-test-boom");</script></body></html>';
    close $b;
    my (undef, $stderr) = chromium($bad, '--dump-dom');
    ok(scalar(grep { /report-test-boom/ } console_lines($stderr)), 'a console error is seen')
      or diag($stderr);
}

my ($dom, $log) = chromium("$out/report.html", '--dump-dom');
is(join("\n", console_lines($log)), '', 'no console message (error, warning or CSP violation)');
like($dom, qr/<h1>db_virtuoso report: database postgres<\/h1>/, 'the page rendered');
for my $id (qw(migrations maintenance health sizes indexes slow_queries))
{
    like($dom, qr/<section id="$id"/, "section $id");
}
unlike($dom, qr/<script/i, 'no script element in the DOM');
unlike($dom, qr/<(img|iframe|object|embed|link)\b/i, 'nothing loaded from elsewhere');
like($dom, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'the table named <script>alert(1)</script> is text');
like($dom, qr/not needed &lt;after all&gt;/, 'a rollback reason is text');
my @svgs = $dom =~ /(<svg\b.*?<\/svg>)/gs;
cmp_ok(scalar @svgs, '>=', 7, 'charts: ' . scalar @svgs);
is(scalar(grep { /<title id=[^>]*>[^<]+<\/title>/ && /<desc id=[^>]*>[^<]+<\/desc>/ && /role="img"/ } @svgs),
    scalar @svgs, 'every chart has role img, a title and a description');
for my $label ('start time (UTC)', 'duration (log scale)', 'runs', 'actions', 'dead tuples removed',
    'total size', 'findings', 'total execution time')
{
    like($dom, qr/class="axis-label"[^>]*>\Q$label\E</, "axis label '$label'");
}
my $runs = $node->safe_psql('postgres',
    q{SELECT count(*) FROM virtuoso.migration_log WHERE started_at >= now() - interval '7 days'});
(my $grouped = $runs) =~ s/(\d)(?=(\d{3})+$)/$1,/g;
like($dom, qr/\b\Q$grouped\E runs since/, "every run of the period is counted ($grouped)");
my ($dots) = scalar(() = $dom =~ /<circle class="dot/g);
cmp_ok($dots, '<=', 6 * 760 + 6, "the duration chart is thinned ($dots marks for $runs runs)");
cmp_ok($dots, '>', 100, 'and still shows the runs');
like($dom, qr/class="[^"]*s-failed/, 'failed runs are drawn');
like($dom, qr/&lt;sample 5&gt;/, 'an error message with markup is text');

# screenshot: a PNG of the requested size that is not blank
my $png = "$out/report.png";
chromium("$out/report.html", "--screenshot=$png", '--window-size=1280,2400', '--hide-scrollbars');
ok(-s $png && -s $png > 50_000, 'screenshot written (' . (-s $png // 0) . " bytes): $png");
open(my $p, '<:raw', $png) or die "cannot read $png: $!";
read($p, my $head, 24);
close $p;
my ($w, $h) = unpack('N2', substr($head, 16, 8));
is(substr($head, 0, 8), "\x89PNG\r\n\x1a\n", 'it is a PNG');
is("${w}x$h", '1280x2400', 'of the window size');
diag("report and screenshot: $out");

$node->stop;
done_testing();
