# ALTER EXTENSION db_virtuoso UPDATE from every earlier version: the log tables keep their
# rows, and the upgraded extension is exactly what a fresh install of the current version
# creates (objects, definitions, column order, comments, privileges).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('upgrade');
my $current = $node->safe_psql('postgres',
    q{SELECT default_version FROM pg_available_extensions WHERE name = 'db_virtuoso'});
my @old_versions = grep { $_ ne $current } split /\n/, $node->safe_psql('postgres',
    q{SELECT version FROM pg_available_extension_versions WHERE name = 'db_virtuoso' ORDER BY version});
ok(scalar(@old_versions) >= 1, "earlier versions are installable beside $current");

# Everything a user could notice of the extension, one line per fact.
my $describe = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'db_virtuoso'),
members AS (
    SELECT classid, objid FROM pg_depend, ext
    WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e')
SELECT line FROM (
    SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM members
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
           || E'\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '<none>')
           || E'\nacl ' || coalesce(p.proacl::text, '<default>')
    FROM pg_proc p WHERE p.pronamespace = 'virtuoso'::regnamespace AND p.prokind <> 'a'
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text
           || E'\ncomment ' || coalesce(obj_description(c.oid, 'pg_class'), '<none>')
           || E'\nacl ' || coalesce(c.relacl::text, '<default>')
           || CASE WHEN c.relkind = 'v' THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
    FROM pg_class c WHERE c.relnamespace = 'virtuoso'::regnamespace
    UNION ALL
    SELECT format('column %s %s %s %s %s default %s comment %s', a.attrelid::regclass,
                  a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), '<none>'),
                  coalesce(col_description(a.attrelid, a.attnum), '<none>'))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'virtuoso'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'virtuoso'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid)
    FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class
                                     WHERE relnamespace = 'virtuoso'::regnamespace)
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'virtuoso'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT 'config ' || unnest(extconfig)::regclass || ' ' || coalesce(array_to_string(extcondition, ','), '')
    FROM pg_extension WHERE extname = 'db_virtuoso'
    UNION ALL
    SELECT 'schema ' || nspname || ' owner-acl ' || coalesce(nspacl::text, '<default>')
           || ' comment ' || coalesce(obj_description(oid, 'pg_namespace'), '<none>')
    FROM pg_namespace WHERE nspname = 'virtuoso'
) facts ORDER BY line};

# Lines only in the fresh install (-) or only after the upgrade (+).
sub difference
{
    my ($want, $got) = @_;
    my (%w, %g);
    $w{$_}++ for split /\n/, $want;
    $g{$_}++ for split /\n/, $got;
    return join("\n", (map { "- $_" } grep { !$g{$_} } sort keys %w),
        (map { "+ $_" } grep { !$w{$_} } sort keys %g));
}

$node->safe_psql('postgres', 'CREATE ROLE upgrade_migrator; CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION db_virtuoso');
my $fresh = $node->safe_psql('fresh', $describe);

for my $old (@old_versions)
{
    my $db = "from_" . ($old =~ s/\W/_/gr);
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, "CREATE EXTENSION db_virtuoso VERSION '$old'");

    # Data in every table, as the old version wrote it.
    $node->safe_psql($db, q{
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric);
INSERT INTO virtuoso.migration_log (name, checksum, status, completed_at, duration,
    migration_sql, rollback_sql, affected_objects, attempts, executed_by, backend_pid,
    initial_stats, final_stats)
VALUES ('add_note', 'c1', 'SUCCESS', clock_timestamp(), '1 second',
        'ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note',
        '["public.accounts"]', 1, 'upgrade_migrator', 4242,
        '{"captured_at": "2026-01-01 00:00:00+00", "connections": 3, "commits": 10, "rollbacks": 1,
          "wal_lsn": "0/1000", "wal_bytes": null, "database_size_bytes": 9000000,
          "database_size_measured_at": "2026-01-01 00:00:00+00",
          "relations": {"public.accounts": {"kind": "r", "size_bytes": 8192, "rows_estimate": 10}}}',
        '{"captured_at": "2026-01-01 00:00:01+00", "connections": 3, "commits": 11, "rollbacks": 1,
          "wal_lsn": "0/2000", "wal_bytes": 4096, "database_size_bytes": 9016384,
          "database_size_measured_at": "2026-01-01 00:00:00+00",
          "relations": {"public.accounts": {"kind": "r", "size_bytes": 16384, "rows_estimate": 10},
                        "public.accounts_pkey": {"kind": "i", "size_bytes": null, "rows_estimate": 0,
                                                 "not_measured": "locked by another session"}}}'),
       ('broken', 'c2', 'FAILED', clock_timestamp(), '2 seconds', 'SELECT 1/0', NULL,
        '[]', 1, current_user, 4243, NULL, NULL);
INSERT INTO virtuoso.maintenance_log (finished_at, relid, schemaname, tablename, action, status,
    executed_by, triggered_by)
VALUES (clock_timestamp(), 'accounts'::regclass, 'public', 'accounts', 'VACUUM', 'SUCCESS',
        current_user, 'function');
});
    # Versions that record the executing role by oid get it as they would have recorded it.
    $node->safe_psql($db, q{
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'virtuoso.migration_log'::regclass
               AND attname = 'executed_by_role' AND NOT attisdropped) THEN
        EXECUTE $u$UPDATE virtuoso.migration_log SET executed_by_role = executed_by::regrole$u$;
    END IF;
END $$});
    my $before = $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM virtuoso.migration_log) || ' migrations, '
    || (SELECT count(*) FROM virtuoso.maintenance_log) || ' maintenance rows, '
    || (SELECT string_agg(name || ':' || status, ',' ORDER BY started_at) FROM virtuoso.migration_log)});
    ok($before =~ /^[1-9]\d* migrations, [1-9]\d* maintenance rows/, "$old: the old version holds data ($before)");

    # The new library refuses to work on the old objects, and says what to do.
    my ($rc0, $out0, $err0) = $node->psql($db,
        q{SELECT virtuoso.execute_migration_with_monitoring('too_early', 'SELECT 1')},
        on_error_stop => 1);
    is($rc0, 3, "$old: before the update the functions fail");
    like($err0, qr/ERROR:\s+db_virtuoso \Q$old\E is installed in this database, but the server has loaded the library of version \Q$current\E/,
        "$old: with a message naming both versions");
    like($err0, qr/HINT:\s+Run ALTER EXTENSION db_virtuoso UPDATE/, "$old: and the remedy");
    # DDL of users still works meanwhile (the event trigger does not check).
    $node->safe_psql($db, 'CREATE TABLE during_upgrade (id int); DROP TABLE during_upgrade');


    # Privileges a DBA granted on the extension's views survive the update (a view the update
    # replaced used to be dropped and made again, without them).  From 0.2.0 on: the frozen
    # 0.1.0 -> 0.2.0 script drops and remakes views.
    my $grantee = 'upgrade_monitor_' . $old =~ s/\W/_/gr;
    $node->safe_psql($db, qq{CREATE ROLE $grantee;
        GRANT USAGE ON SCHEMA virtuoso TO $grantee;
        GRANT SELECT ON virtuoso.unused_indexes, virtuoso.redundant_indexes TO $grantee});

    my $had_stats_table = $node->safe_psql($db,
        q{SELECT to_regclass('virtuoso.migration_stats') IS NOT NULL}) eq 't';
    my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION db_virtuoso UPDATE', on_error_stop => 1);
    is($rc, 0, "$old: ALTER EXTENSION db_virtuoso UPDATE succeeds") or diag($err);
    is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'db_virtuoso'}),
        $current, "$old: now at $current");

    my $after = $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM virtuoso.migration_log) || ' migrations, '
    || (SELECT count(*) FROM virtuoso.maintenance_log) || ' maintenance rows, '
    || (SELECT string_agg(name || ':' || status, ',' ORDER BY started_at) FROM virtuoso.migration_log)});
    is($after, $before, "$old: the logs keep every row");
    is($node->safe_psql($db, qq{SELECT has_table_privilege('$grantee', 'virtuoso.unused_indexes', 'SELECT')
        AND has_table_privilege('$grantee', 'virtuoso.redundant_indexes', 'SELECT')}),
        't', "$old: SELECT granted on the views is kept") if $old ne '0.1.0';
    $node->safe_psql($db, qq{REVOKE ALL ON ALL TABLES IN SCHEMA virtuoso FROM $grantee;
        REVOKE USAGE ON SCHEMA virtuoso FROM $grantee});

    # The statistics of each relation moved to migration_stats; the log rows keep a summary.
    # (Versions that already have migration_stats wrote the rows as they are: nothing moves.)
    if ($had_stats_table) {
        is($node->safe_psql($db, q{SELECT count(*) FROM virtuoso.migration_stats}), '0',
            "$old: migration_stats existed already: nothing moved into it");
    } else {
        is($node->safe_psql($db, q{
    SELECT string_agg(m.name || ' ' || s.phase || ' ' || s.relations::text, E'\n' ORDER BY s.phase DESC)
    FROM virtuoso.migration_stats s JOIN virtuoso.migration_log m ON m.id = s.migration_id}),
            join("\n",
                'add_note initial {"public.accounts": {"kind": "r", "size_bytes": 8192, "rows_estimate": 10}}',
                'add_note final {"public.accounts": {"kind": "r", "size_bytes": 16384, "rows_estimate": 10}, '
                . '"public.accounts_pkey": {"kind": "i", "size_bytes": null, "not_measured": "locked by another session", "rows_estimate": 0}}'),
            "$old: the per-relation statistics of old runs move to migration_stats");
        is($node->safe_psql($db, q{
    SELECT name || ' ' || coalesce(initial_stats::text, '-') || ' ' || coalesce(final_stats::text, '-')
    FROM virtuoso.migration_log ORDER BY name}),
            join("\n",
                'add_note {"commits": 10, "wal_lsn": "0/1000", "relations": {"public.accounts": 8192}, "rollbacks": 1, "wal_bytes": null, "connections": 3, "database_size_bytes": 9000000, "database_size_measured_at": "2026-01-01 00:00:00+00"} '
                . '{"commits": 11, "wal_lsn": "0/2000", "relations": {"public.accounts": 16384, "public.accounts_pkey": null}, "rollbacks": 1, "wal_bytes": 4096, "connections": 3, "database_size_bytes": 9016384}',
                'broken - -'),
            "$old: and their log rows keep the summary");
    }

    my $upgraded = $node->safe_psql($db, $describe);
    is($upgraded, $fresh, "$old: the upgraded extension equals a fresh install of $current")
      or diag(difference($fresh, $upgraded));

    # Old runs belong to the role of their executed_by name.
    is($node->safe_psql($db, q{SELECT string_agg(name || ':' || coalesce(pg_get_userbyid(executed_by_role)::text, '-'), ',' ORDER BY name)
        FROM virtuoso.migration_log}), "add_note:upgrade_migrator,broken:postgres",
        "$old: executed_by_role of old runs is the role named by executed_by");

    # The upgraded extension works: a new migration and its log row.
    is($node->safe_psql($db, q{SELECT status FROM virtuoso.execute_migration_with_monitoring(
        'after_upgrade', 'CREATE TABLE after_upgrade (id int)')}),
        'SUCCESS', "$old: migrations run after the upgrade");
    is($node->safe_psql($db, q{SELECT string_agg(s.phase || ' ' || s.relations::text, ',')
        FROM virtuoso.migration_stats s JOIN virtuoso.migration_log m ON m.id = s.migration_id
        WHERE m.name = 'after_upgrade'}), 'final {"public.after_upgrade": {"kind": "r", "size_bytes": 0, "rows_estimate": -1}}',
        "$old: and record their statistics per relation");
    # Deleting a run deletes its statistics.
    $node->safe_psql($db, q{DELETE FROM virtuoso.migration_log WHERE name = 'add_note'});
    is($node->safe_psql($db, q{SELECT count(*) FROM virtuoso.migration_stats}), '1',
        "$old: deleting a run deletes its statistics");

    # And DROP EXTENSION leaves no schema behind.
    $node->safe_psql($db, 'DROP EXTENSION db_virtuoso');
    is($node->safe_psql($db, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'virtuoso'}),
        '0', "$old: DROP EXTENSION after the upgrade removes schema virtuoso");
}

done_testing();
