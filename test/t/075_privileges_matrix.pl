# Privilege matrix: every function and procedure of schema virtuoso, called from psql by
# five roles, each call aimed at objects of another role (alice), under a hostile
# search_path.  One row per (function, action): the expected outcome for each role is what
# the README's "Guarantees and privilege model" promises.  A routine of schema virtuoso
# without a row fails the test, so new functions must be added here.
#
# Roles:  none    - may log in, no grant at all
#         granted - the documented grants: USAGE on schema virtuoso + EXECUTE on everything
#         stats   - the documented grants + member of pg_read_all_stats
#         owner   - alice, owner of the objects touched, with the documented grants
#         super   - the bootstrap superuser
#
# Outcome: a SQLSTATE (the call must fail with it, psql exit 3) or 'ok:<output>' (psql exit
# 0, its unaligned tuples-only output: columns joined by '|', rows by ';').  On top of every
# row:
#   - no shadowing operator, function, aggregate or type (a domain) of schema public, which
#     every call puts before pg_catalog, runs (stderr has no SHADOW);
#   - alice's code (alice.trap, alice.trapf) reached through planning, rules, stored SQL or an
#     index expression only ever runs as alice, never as the caller.
# A second matrix does the same for every table and view of schema virtuoso (pg_class).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('privs', q{
pg_stat_statements.track = top
autovacuum = off
});
my $su = 'postgres';
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

my %role = (
    none    => 'priv_none',
    granted => 'priv_granted',
    stats   => 'priv_stats',
    owner   => 'alice',
    super   => $su,
);
my @tags = qw(none granted stats owner super);

# ---- roles and alice's objects -----------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE priv_none LOGIN;
CREATE ROLE priv_granted LOGIN;
CREATE ROLE priv_stats LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE alice LOGIN;
GRANT USAGE ON SCHEMA virtuoso TO priv_granted, priv_stats, alice;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO priv_granted, priv_stats, alice;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA virtuoso TO priv_granted, priv_stats, alice;
CREATE SCHEMA alice AUTHORIZATION alice;
GRANT USAGE ON SCHEMA alice TO PUBLIC;   -- the schema, not its tables
});

$node->safe_psql('postgres', q{
SET ROLE alice;
CREATE TABLE alice.t (id int, v text) WITH (autovacuum_enabled = off);   -- no primary key
INSERT INTO alice.t SELECT g, 'v' || g FROM generate_series(1, 20000) g;
CREATE TABLE alice.who (m text, u text);
CREATE TABLE alice.audited (id int PRIMARY KEY, v text, updated_at timestamptz);
CREATE TABLE alice.copy (id int, v text);   -- migrate_data_batched's target
CREATE TABLE alice.pcopy (id int, v text);  -- the same with parallel workers
CREATE TABLE alice.ec (id int, v int);   -- expand_column_change's table
INSERT INTO alice.ec SELECT g, g FROM generate_series(1, 1000) g;
CREATE TABLE alice.ix (id int, v text);   -- the index rows build here, the advisor plans alice.t
INSERT INTO alice.ix SELECT g, 'v' || g FROM generate_series(1, 1000) g;
-- alice's code: whoever runs it is named on stderr
CREATE FUNCTION alice.trap() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE WARNING 'TRAP as %', current_user;
    RETURN 5;
END $$;
-- an expression index with alice's code: whoever vacuums, analyzes or reindexes the table
-- makes PostgreSQL run it, which must happen as alice (one row of the sample says so)
CREATE FUNCTION alice.trapf(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF i OPERATOR(pg_catalog.=) 1 THEN RAISE WARNING 'TRAP as %', current_user; END IF;
    RETURN i;
END $$;
CREATE INDEX ix_trapf ON alice.ix ((alice.trapf(id)));
ANALYZE alice.t;
DELETE FROM alice.t WHERE id OPERATOR(pg_catalog.>) 10000;   -- dead tuples: vacuum due
SELECT pg_stat_force_next_flush();
});

# alice's workload in pg_stat_statements: a query that wants an index, and one whose planning
# folds alice.trap.  (Workload text is resolved with the caller's search_path, documented:
# the operator is qualified so the hostile search_path does not take it.)
$node->safe_psql('postgres', q{
SELECT pg_stat_statements_reset();
SET ROLE alice;
SELECT * FROM alice.t WHERE v OPERATOR(pg_catalog.=) 'v17';
SELECT * FROM alice.t WHERE v OPERATOR(pg_catalog.=) 'v18';
SELECT * FROM alice.t WHERE v OPERATOR(pg_catalog.=) 'v19';
SELECT * FROM alice.t WHERE id = alice.trap();
SELECT * FROM alice.t WHERE id = alice.trap();
}) ;

# alice's migration runs, one per (action, role) so that no call changes another's state
my $rules = q{[{"name": "trap_rule", "query": "SELECT alice.trap() AS count", "expected": 5},
               {"name": "ids", "type": "unique", "table": "alice.t", "column": "id"}]};
for my $tag (@tags)
{
    my $sql = '';
    for my $action (qw(replace runmig rollback verify trap))
    {
        my $name = "m_${action}_$tag";
        my $rollback = $action eq 'trap'
            ? "SELECT alice.trap(); INSERT INTO alice.who VALUES ('$name', current_user)"
            : "DROP TABLE alice.$name; INSERT INTO alice.who VALUES ('$name', current_user)";
        my $mig = $action eq 'trap' ? 'SELECT 1'
          : "CREATE TABLE alice.$name (id int); INSERT INTO alice.$name VALUES (1)";
        $sql .= "SELECT status FROM virtuoso.execute_migration_with_monitoring('$name', "
          . "\$m\$$mig\$m\$, \$r\$$rollback\$r\$, \$o\${\"validation_rules\": $rules}\$o\$);\n";
    }
    $node->safe_psql('postgres', "SET ROLE alice;\n$sql");
}

# ---- the hostile search_path -------------------------------------------------------------
# Shadows in schema public, which every call puts before pg_catalog.  Each one says SHADOW on
# stderr and then does what the original does, so a captured call is seen, not hidden.
my $shadows = '';
for my $op (['=', 'int4', 'int4eq'], ['=', 'int8', 'int8eq'], ['=', 'text', 'texteq'],
    ['=', 'oid', 'oideq'], ['=', 'name', 'nameeq'], ['<>', 'text', 'textne'],
    ['<>', 'oid', 'oidne'], ['>', 'int8', 'int8gt'], ['<', 'int4', 'int4lt'])
{
    my ($sym, $type, $proc) = @$op;
    my $f = "shadow_$proc";
    $shadows .= qq{
CREATE FUNCTION public.$f(a $type, b $type) RETURNS bool LANGUAGE plpgsql AS \$\$
BEGIN RAISE WARNING 'SHADOW $sym($type)'; RETURN pg_catalog.$proc(a, b); END \$\$;
CREATE OPERATOR public.$sym (LEFTARG = $type, RIGHTARG = $type, PROCEDURE = public.$f);
};
}
for my $fn (['lower', 'text', 'text'], ['upper', 'text', 'text'],
    ['quote_ident', 'text', 'text'], ['length', 'text', 'int4'],
    ['pg_get_userbyid', 'oid', 'name'], ['to_regclass', 'text', 'regclass'],
    ['pg_relation_size', 'regclass', 'int8'], ['pg_table_is_visible', 'oid', 'bool'],
    ['quote_literal', 'text', 'text'], ['current_setting', 'text', 'text'],
    ['jsonb_typeof', 'jsonb', 'text'], ['pg_total_relation_size', 'regclass', 'int8'],
    ['pg_size_pretty', 'int8', 'text'], ['pg_get_indexdef', 'oid', 'text'],
    ['btrim', 'text', 'text'], ['md5', 'text', 'text'], ['to_jsonb', 'anyelement', 'jsonb'],
    ['array_to_string', 'anyarray, b text', 'text'], ['left', 'text, b int4', 'text'],
    ['has_table_privilege', 'oid, b text', 'bool'], ['has_any_column_privilege', 'oid, b text', 'bool'],
    ['pg_has_role', 'oid, b text', 'bool'], ['has_schema_privilege', 'oid, b text', 'bool'],
    ['set_config', 'text, b text, c bool', 'text'])
{
    my ($name, $arg, $ret) = @$fn;
    my $args = join(', ', ('a', 'b', 'c')[0 .. ($arg =~ tr/,//)]);
    $shadows .= qq{
CREATE FUNCTION public.$name(a $arg) RETURNS $ret LANGUAGE plpgsql AS \$\$
BEGIN RAISE WARNING 'SHADOW $name'; RETURN pg_catalog.$name($args); END \$\$;
};
}
for my $fn (['now', 'timestamptz'], ['clock_timestamp', 'timestamptz'], ['pg_backend_pid', 'int4'])
{
    my ($name, $ret) = @$fn;
    $shadows .= qq{
CREATE FUNCTION public.$name() RETURNS $ret LANGUAGE plpgsql AS \$\$
BEGIN RAISE WARNING 'SHADOW $name'; RETURN pg_catalog.$name(); END \$\$;
};
}
$shadows .= q{
CREATE FUNCTION public.jsonb_array_elements(a jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN RAISE WARNING 'SHADOW jsonb_array_elements'; RETURN QUERY SELECT pg_catalog.jsonb_array_elements(a); END $$;
CREATE FUNCTION public.shadow_agg_sfunc(s text, x text, d text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE WARNING 'SHADOW string_agg'; RETURN s; END $$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.shadow_agg_sfunc, STYPE = text);
};
$shadows .= q{
CREATE FUNCTION public.shadow_count_sfunc(s int8) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN RAISE WARNING 'SHADOW count(*)'; RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE public.count(*) (SFUNC = public.shadow_count_sfunc, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.shadow_count_any_sfunc(s int8, x anyelement) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN RAISE WARNING 'SHADOW count(any)'; RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE public.count(anyelement) (SFUNC = public.shadow_count_any_sfunc, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.shadow_type(t text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN RAISE WARNING 'SHADOW type %', t; RETURN true; END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
};
# Types too: a cast to an unqualified type name in the extension's SQL would take these
# domains, whose CHECK says SHADOW.  (oid, regclass and regrole stay: the calls below use them.)
for my $type (qw(text jsonb name int4 int8 uuid interval float8 bool numeric timestamptz))
{
    $shadows .= qq{CREATE DOMAIN public.$type AS pg_catalog.$type CHECK (public.shadow_type('$type'));\n};
}
$node->safe_psql('postgres', $shadows);
# the shadows do capture unqualified SQL on this search_path (so the checks below can fail)
{
    my (undef, undef, $err) = $node->psql('postgres', q{SET search_path = public, pg_catalog;
SELECT 1 = 1, lower('A'), (SELECT count(*) FROM (VALUES (1)) v), 'x'::text},
        extra_params => ['-U', 'priv_granted']);
    like($err, qr/SHADOW =\(int4\).*SHADOW lower.*SHADOW count\(\*\).*SHADOW type text/s, 'the shadows capture unqualified SQL');
}

# Runs SQL from psql as the role of a tag, on the hostile search_path: 'ok:<output>' (rows
# joined by ';') or the SQLSTATE of the error, and the stderr.
sub outcome
{
    my ($tag, $sql) = @_;
    my ($rc, $out, $err) = $node->psql('postgres', "SET search_path = public, pg_catalog;\n$sql",
        extra_params => ['-U', $role{$tag}, '-v', 'VERBOSITY=verbose']);
    my $got;
    if ($rc == 0)
    {
        $out =~ s/\n/;/g;
        $out =~ s/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/UUID/g;
        $got = "ok:$out";
    }
    else
    {
        ($got) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
        $got //= "exit $rc";
    }
    return { outcome => $got, err => $err };
}

# ---- the matrix --------------------------------------------------------------------------
# [ routine (regprocedure), action, call ('%s' = the role tag), none, granted, stats, owner, super ]
my $ok_verify = 'ok:migration_status|PASS;objects|PASS;invalid_index|PASS;'
  . 'not_valid_constraint|PASS;validation_rule|PASS;validation_rule|PASS';
my @matrix = (
    ['virtuoso.execute_top_level(text)', 'change',
        q{SELECT virtuoso.execute_top_level('DELETE FROM alice.t WHERE false')},
        '42501', '42501', '42501', 'ok:DELETE 0', 'ok:DELETE 0'],
    ['virtuoso.execute_top_level(text)', 'vacuum',
        # PostgreSQL skips a table the role may not vacuum with a WARNING, as without the runner
        q{SELECT virtuoso.execute_top_level('VACUUM (ANALYZE) alice.ix')},
        '42501', 'ok:VACUUM', 'ok:VACUUM', 'ok:VACUUM', 'ok:VACUUM'],
    ['virtuoso.execute_autonomous(text)', 'read',
        q{SELECT virtuoso.execute_autonomous('SELECT * FROM alice.t LIMIT 1')},
        '42501', '42501', '42501', 'ok:SELECT 1', 'ok:SELECT 1'],
    ['virtuoso.run_top_level(text,text)', 'index',
        q{CALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY rtl_%s ON alice.ix (v)')},
        '42501', '42501', '42501', 'ok:CREATE INDEX', 'ok:CREATE INDEX'],
    ['virtuoso.run_top_level(text,text)', 'reindex',
        q{CALL virtuoso.run_top_level('REINDEX INDEX CONCURRENTLY alice.ix_trapf')},
        '42501', '42501', '42501', 'ok:REINDEX', 'ok:REINDEX'],
    ['virtuoso.build_index_concurrently(text,text)', 'index',
        q{CALL virtuoso.build_index_concurrently('CREATE INDEX bic_%s ON alice.ix (id)')},
        '42501', '42501', '42501', 'ok:alice.bic_owner', 'ok:alice.bic_super'],
    ['virtuoso.create_index_concurrently(text,integer)', 'index',
        q{SELECT virtuoso.create_index_concurrently('CREATE INDEX cic_%s ON alice.ix (id)')},
        '42501', '25001', '25001', '25001', '25001'],
    ['virtuoso.recommend_indexes(bigint,double precision,text,bigint,integer)', 'plan',
        q{SELECT table_name, columns FROM virtuoso.recommend_indexes()
          WHERE table_name OPERATOR(pg_catalog.~~) 'alice.%'},
        '42501', 'ok:', 'ok:', 'ok:alice.t|{v}', 'ok:alice.t|{v}'],
    ['virtuoso.advisor_benchmark(bigint,integer,bigint,integer)', 'plan',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.advisor_benchmark()},
        '42501', 'ok:t', 'ok:t', 'ok:t', 'ok:t'],
    # Linting says which lock a statement takes; sizes only of tables the caller may read.
    ['virtuoso.lint_migration(text,boolean)', 'plan',
        q{SELECT rule, lock_mode,
                 CASE WHEN pg_catalog.strpos(details::pg_catalog.text, 'facts_withheld')
                           OPERATOR(pg_catalog.>) 0 THEN 'withheld' ELSE 'shown' END
          FROM virtuoso.lint_migration('CREATE INDEX t_v_lint ON alice.t (v)')
          WHERE rule OPERATOR(pg_catalog.=) 'create_index_not_concurrent'},
        '42501', 'ok:create_index_not_concurrent|SHARE|withheld',
        'ok:create_index_not_concurrent|SHARE|shown', 'ok:create_index_not_concurrent|SHARE|shown',
        'ok:create_index_not_concurrent|SHARE|shown'],
    ['virtuoso.recommend_indexes_for_query(text)', 'plan',
        q{SELECT table_name, columns FROM virtuoso.recommend_indexes_for_query(
          $q$SELECT * FROM alice.t WHERE v OPERATOR(pg_catalog.=) 'v3'$q$)},
        '42501', '42501', '42501', 'ok:alice.t|{v}', 'ok:alice.t|{v}'],
    ['virtuoso.optimize_table_indexes(regclass,boolean)', 'plan',
        q{SELECT table_name, columns FROM virtuoso.optimize_table_indexes('alice.t')},
        '42501', '42501', '42501', 'ok:alice.t|{v}', 'ok:alice.t|{v}'],
    ['virtuoso.hypothetical_index_cost(text,regclass,text[],text[],bigint,integer)', 'plan',
        q{SELECT index_used FROM virtuoso.hypothetical_index_cost(
          $q$SELECT * FROM alice.t WHERE v OPERATOR(pg_catalog.=) 'v3'$q$, 'alice.t', '{v}')},
        '42501', '42501', '42501', 'ok:t', 'ok:t'],
    ['virtuoso.validate_data_integrity(jsonb)', 'verify',
        # typed rules: the SQL the extension generates must not reach the shadows
        q{SELECT pg_catalog.string_agg(rule_name OPERATOR(pg_catalog.||) '=' OPERATOR(pg_catalog.||) status, ' '
                                       ORDER BY rule_name)
          FROM virtuoso.validate_data_integrity('[
            {"name": "unique", "type": "unique", "table": "alice.t", "column": "id"},
            {"name": "not_null", "type": "not_null", "table": "alice.t", "column": "v"},
            {"name": "values", "type": "accepted_values", "table": "alice.ix", "column": "id", "values": [1, 2]},
            {"name": "range", "type": "range", "table": "alice.t", "column": "id", "min": 1, "max": 20000},
            {"name": "rows", "type": "row_count", "table": "alice.t", "min": 1},
            {"name": "fk", "type": "foreign_key", "table": "alice.ix", "column": "id",
             "references": "alice.t", "referenced_column": "id"}]')},
        '42501', 'ok:' . join(' ', map { "$_=ERROR" } qw(fk not_null range rows unique values)),
        'ok:' . join(' ', map { "$_=ERROR" } qw(fk not_null range rows unique values)),
        'ok:fk=PASS not_null=PASS range=PASS rows=PASS unique=PASS values=FAIL',
        'ok:fk=PASS not_null=PASS range=PASS rows=PASS unique=PASS values=FAIL'],
    ['virtuoso.health_may_see(oid)', 'read',
        q{SELECT virtuoso.health_may_see('alice.t'::regclass)},
        '42501', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.health_is_user_relation(oid)', 'read',
        q{SELECT virtuoso.health_is_user_relation('alice.t'::regclass)},
        '42501', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.check_database_health(boolean,interval,interval,bigint,interval)', 'read',
        q{SELECT check_name FROM virtuoso.check_database_health()
          WHERE object OPERATOR(pg_catalog.=) 'alice.t'},
        '42501', 'ok:', 'ok:no_primary_key', 'ok:no_primary_key', 'ok:no_primary_key'],
    ['virtuoso.slow_queries_analysis_rows()', 'read',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.slow_queries_analysis_rows()
          WHERE userid OPERATOR(pg_catalog.=) 'alice'::regrole::oid},
        '42501', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.perform_maintenance_if_needed(boolean)', 'vacuum',
        q{SELECT action, status FROM virtuoso.perform_maintenance_if_needed(true)
          WHERE schemaname OPERATOR(pg_catalog.=) 'alice' AND action OPERATOR(pg_catalog.=) 'VACUUM'},
        '42501', 'ok:VACUUM|SKIPPED', 'ok:VACUUM|SKIPPED',
        'ok:VACUUM|DRY_RUN', 'ok:VACUUM|DRY_RUN'],
    ['virtuoso.perform_maintenance_if_needed(boolean)', 'vacuum',
        q{SELECT action, status FROM virtuoso.perform_maintenance_if_needed(false)
          WHERE schemaname OPERATOR(pg_catalog.=) 'alice' AND action OPERATOR(pg_catalog.=) 'VACUUM'},
        # the owner's call vacuums alice.t: nothing is due any more for the superuser
        '42501', 'ok:VACUUM|SKIPPED', 'ok:VACUUM|SKIPPED',
        'ok:VACUUM|SUCCESS', 'ok:'],
    ['virtuoso.execute_migration_with_monitoring(text,text,text,jsonb)', 'change',
        q{SELECT status FROM virtuoso.execute_migration_with_monitoring('m_replace_%s',
          'SELECT 1', NULL, '{"force": true}')},
        '42501', '42501', '42501', 'ok:SUCCESS', 'ok:SUCCESS'],
    ['virtuoso.execute_migration_with_monitoring(text,text,text,jsonb)', 'verify',
        # a new run whose validation rule reads alice's table: the caller's rights decide
        q{SELECT status FROM virtuoso.execute_migration_with_monitoring('m_rules_%s', 'SELECT 1', NULL,
          '{"validation_rules": [{"name": "rows", "type": "row_count", "table": "alice.t", "min": 1}]}')},
        '42501', '23514', '23514', 'ok:SUCCESS', 'ok:SUCCESS'],
    ['virtuoso.run_migration(text,text,text,jsonb,text,uuid)', 'change',
        q{CALL virtuoso.run_migration('m_runmig_%s', 'SELECT 1', NULL, '{"force": true}', NULL, NULL)},
        '42501', '42501', '42501', 'ok:SUCCESS|UUID', 'ok:SUCCESS|UUID'],
    # A plan's steps run with the caller's rights: a role that may not create in schema alice
    # gets a FAILED step and the plan undone, reported in rows (no error).
    ['virtuoso.execute_database_implementation(jsonb)', 'change',
        q{SELECT status FROM virtuoso.execute_database_implementation('{"name": "plan_%s", "changes": [
          {"name": "t", "type": "create_table", "definition": "CREATE TABLE alice.plan_%s (id int)"}]}')
          WHERE step_name OPERATOR(pg_catalog.=) 'plan: plan_%s'},
        '42501', 'ok:ROLLED_BACK', 'ok:ROLLED_BACK', 'ok:SUCCESS', 'ok:SUCCESS'],
    ['virtuoso.run_implementation(jsonb,text,uuid,jsonb)', 'change',
        q{CALL virtuoso.run_implementation('{"name": "planp_%s", "changes": [
          {"name": "t", "type": "create_table", "definition": "CREATE TABLE alice.planp_%s (id int)"}]}', NULL, NULL, NULL) \gset p_
          SELECT :'p_status'},
        '42501', 'ok:ROLLED_BACK', 'ok:ROLLED_BACK', 'ok:SUCCESS', 'ok:SUCCESS'],
    ['virtuoso.execute_rollback_with_backup(text,boolean,text)', 'roll back',
        q{SELECT status, backup_tables[1] AS bk
          FROM virtuoso.execute_rollback_with_backup('m_rollback_%s', true) \gset
          SELECT :'status', relowner::regrole FROM pg_catalog.pg_class
          WHERE oid OPERATOR(pg_catalog.=) :'bk'::regclass;
          SELECT * FROM :bk;
          SELECT u FROM alice.who WHERE m OPERATOR(pg_catalog.=) 'm_rollback_%s'},
        # the backup belongs to the caller, who can read it; the stored rollback SQL runs as alice
        '42501', '42501', '42501', 'ok:ROLLED_BACK|alice;1;alice', 'ok:ROLLED_BACK|postgres;1;alice'],
    ['virtuoso.execute_rollback_with_backup(text,boolean,text)', 'stored SQL of another role',
        q{SELECT status FROM virtuoso.execute_rollback_with_backup('m_trap_%s', true);
          SELECT u FROM alice.who WHERE m OPERATOR(pg_catalog.=) 'm_trap_%s'},
        '42501', '42501', '42501', 'ok:ROLLED_BACK;alice', 'ok:ROLLED_BACK;alice'],
    ['virtuoso.verify_migration_integrity(text)', 'verify',
        q{SELECT check_name, status FROM virtuoso.verify_migration_integrity('m_verify_%s')
          WHERE check_name OPERATOR(pg_catalog.<>) 'statements'},
        '42501', '42501', '42501', $ok_verify, $ok_verify],
    # audit: only the table's owner sets it up or reads its history
    ['virtuoso.enable_audit(regclass,text[],boolean)', 'audit',
        q{SELECT virtuoso.enable_audit('alice.audited')},
        '42501', '42501', '42501', 'ok:', 'ok:'],
    ['virtuoso.audit_history(regclass,jsonb)', 'read',
        q{SELECT pg_catalog.count(*) FROM virtuoso.audit_history('alice.audited', NULL)},
        '42501', '42501', '42501', 'ok:0', 'ok:0'],
    ['virtuoso.disable_audit(regclass)', 'audit',
        q{SELECT virtuoso.disable_audit('alice.audited')},
        '42501', '42501', '42501', 'ok:', 'ok:'],
    ['virtuoso.enable_updated_at(regclass,text,boolean)', 'stamp',
        q{SELECT virtuoso.enable_updated_at('alice.audited')},
        '42501', '42501', '42501', 'ok:', 'ok:'],
    # alerts: acknowledged by any role with EXECUTE (an unknown id here)
    ['virtuoso.acknowledge_alert(bigint)', 'acknowledge',
        q{SELECT virtuoso.acknowledge_alert(-1)},
        '42501', '42704', '42704', '42704', '42704'],
    ['virtuoso.audit_trigger()', 'call directly',
        q{SELECT virtuoso.audit_trigger()},
        '42501', '39P01', '39P01', '39P01', '39P01'],
    ['virtuoso.updated_at_trigger()', 'call directly',
        q{SELECT virtuoso.updated_at_trigger()},
        '42501', '39P01', '39P01', '39P01', '39P01'],
    ['virtuoso.audit_new_partitions()', 'call directly',
        q{SELECT virtuoso.audit_new_partitions()},
        '42501', '39P01', '39P01', '39P01', '39P01'],
    # The report reads as the caller: the logs only with SELECT on them (superuser here),
    # facts about alice's table only for roles that may see it.
    ['virtuoso.report_html(interval,boolean)', 'read',
        q{SELECT pg_catalog.strpos(h, 'permission denied for table migration_log') OPERATOR(pg_catalog.>) 0,
                 pg_catalog.strpos(h, '>alice.t<') OPERATOR(pg_catalog.>) 0
          FROM (SELECT virtuoso.report_html() AS h) r},
        '42501', 'ok:t|f', 'ok:t|t', 'ok:t|t', 'ok:f|t'],
    ['virtuoso.capture_migration_ddl()', 'call directly',
        q{SELECT virtuoso.capture_migration_ddl()},
        '42501', '39P01', '39P01', '39P01', '39P01'],
    # (last: the backfill leaves dead tuples in alice.t, the rows above do not see them)
    # The copy's query runs as the caller, into alice's table; job names per role.
    ['virtuoso.migrate_data_batched(text,text,integer,integer,text,text)', 'change',
        q{CALL virtuoso.migrate_data_batched('SELECT id, v FROM alice.t', 'alice.copy', 3000, 1, 'id', 'copy_%s');
          SELECT pg_catalog.count(*) FROM alice.copy},
        '42501', '42501', '42501', 'ok:10000', 'ok:20000'],
    # The same split among two runner workers, which run as the caller too.
    ['virtuoso.migrate_data_batched(text,text,integer,integer,text,text)', 'parallel',
        q{CALL virtuoso.migrate_data_batched('SELECT id, v FROM alice.t', 'alice.pcopy', 3000, 2, 'id', 'pcopy_%s');
          SELECT pg_catalog.count(*) FROM alice.pcopy},
        '42501', '42501', '42501', 'ok:10000', 'ok:20000'],
    # A volatile default: a backfill UPDATE of alice's table, which only its owner may alter.
    ['virtuoso.add_column_zero_downtime(regclass,text,text,text,integer,boolean)', 'change',
        q{CALL virtuoso.add_column_zero_downtime('alice.t', 'c_%s', 'integer', '(pg_catalog.random() OPERATOR(pg_catalog.*) 0)::pg_catalog.int4', 4000, true);
          SELECT pg_catalog.count(*) FROM alice.t WHERE c_%s IS NULL},
        '42501', '42501', '42501', 'ok:0', 'ok:0'],
    # Column changes of alice's table: only its owner starts one; the superuser's call resumes
    # alice's (it has her privileges); abort and contract only for members of alice.
    ['virtuoso.expand_column_change(regclass,text,text,text,text,text,integer,text)', 'change',
        q{CALL virtuoso.expand_column_change('alice.ec', 'v', 'bigint', new_column_name => 'w', batch_size => 300)},
        '42501', '42501', '42501', 'ok:cc1', 'ok:cc1'],
    ['virtuoso.column_change_trigger()', 'call directly',
        q{SELECT virtuoso.column_change_trigger()},
        '42501', '39P01', '39P01', '39P01', '39P01'],
    ['virtuoso.abort_column_change(text)', 'change',
        q{SELECT virtuoso.abort_column_change('cc1')},
        '42501', '42501', '42501', 'ok:column change cc1 aborted: column w and its trigger dropped', '55000'],
    ['virtuoso.contract_column_change(text,boolean,text)', 'change',
        q{CALL virtuoso.contract_column_change('cc1')},
        '42501', '42501', '42501', '55000', '55000'],
    ['virtuoso.progress_jobs()', 'read',
        q{SELECT pg_catalog.count(*) FROM virtuoso.progress_jobs()},
        '42501', 'ok:0', 'ok:0', 'ok:0', 'ok:0'],
);

# Every routine of schema virtuoso has a row, and every row names one.
my %in_matrix = map { $_->[0] => 1 } @matrix;
my @routines = split /\n/, $node->safe_psql('postgres', q{
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'virtuoso'::regnamespace ORDER BY 1});
my %in_catalog = map { $_ => 1 } @routines;
is_deeply([grep { !$in_matrix{$_} } @routines], [], 'every routine of schema virtuoso has a matrix row');
is_deeply([grep { !$in_catalog{$_} } sort keys %in_matrix], [], 'every matrix row names a routine');

my %trapped;    # rows whose superuser call reached alice's code
for my $row (@matrix)
{
    my ($routine, $action, $call, @expect) = @$row;
    for my $i (0 .. $#tags)
    {
        my $tag = $tags[$i];
        my $want = $expect[$i];
        (my $sql = $call) =~ s{%s}{$tag}g;
        my $res = outcome($tag, $sql);
        my ($got, $err) = ($res->{outcome}, $res->{err});
        my $label = "$routine [$action] as $tag";
        is($got, $want, $label) or diag("stderr: $err");
        unlike($err, qr/SHADOW/, "$label: no shadowing function or operator runs");
        my @trap = $err =~ /TRAP as (\S+)/g;
        is_deeply([grep { $_ ne 'alice' } @trap], [], "$label: alice's code runs only as alice");
        $trapped{"$routine [$action]"} = 1 if $tag eq 'super' && @trap;
    }
}

# ---- the relations of schema virtuoso ----------------------------------------------------
# Readers are given SELECT on the views (the README's "monitoring views"); the log tables are
# granted to nobody here.  Each view may show facts only about relations the caller owns or
# may read, or all with pg_read_all_stats; statements only of roles the caller is a member
# of, or all with pg_read_all_stats.
$node->safe_psql('postgres', q{
DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT oid FROM pg_class WHERE relnamespace = 'virtuoso'::regnamespace AND relkind = 'v'
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO priv_granted, priv_stats, alice', v);
    END LOOP;
END $$;
});
my $sees_alice = q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.%s
                   WHERE schemaname OPERATOR(pg_catalog.=) 'alice'};
my @relations = (
    ['virtuoso.migration_performance_dashboard', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.unused_indexes', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.redundant_indexes', 'ok:f', 'ok:t', 'ok:t', 'ok:t'],
    ['virtuoso.slow_queries_analysis', 'ok:f', 'ok:t', 'ok:t', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.slow_queries_analysis
          WHERE userid OPERATOR(pg_catalog.=) 'alice'::regrole::oid}],
    ['virtuoso.migration_log', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.migration_log}],
    # the statistics of each relation of a run: readable where the run is
    ['virtuoso.migration_stats', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.migration_stats}],
    ['virtuoso.alerts', 'ok:t', 'ok:t', 'ok:t', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM virtuoso.alerts}],
    ['virtuoso.alert_log', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM virtuoso.alert_log}],
    ['virtuoso.audit_log', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM virtuoso.audit_log}],
    ['virtuoso.implementation_run', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.implementation_run}],
    ['virtuoso.implementation_step', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.implementation_step}],
    # runs of roles whose privileges the caller has
    ['virtuoso.implementation_log', 'ok:f', 'ok:f', 'ok:t', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.implementation_log
          WHERE executed_by OPERATOR(pg_catalog.=) 'alice'}],
    ['virtuoso.batch_jobs', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.batch_jobs}],
    ['virtuoso.batch_job_ranges', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM virtuoso.batch_job_ranges}],
    # nothing runs while the matrix reads it: what counts is that it reads safely
    ['virtuoso.progress', 'ok:0', 'ok:0', 'ok:0', 'ok:0',
        q{SELECT pg_catalog.count(*) FROM virtuoso.progress}],
    ['virtuoso.column_changes_log', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.column_changes_log}],
    # changes of roles whose privileges the caller has, all for pg_read_all_stats
    ['virtuoso.column_changes', 'ok:f', 'ok:t', 'ok:t', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.column_changes
          WHERE table_name OPERATOR(pg_catalog.=) 'alice.ec'}],
    ['virtuoso.maintenance_log', '42501', '42501', '42501', 'ok:t',
        q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM virtuoso.maintenance_log}],
);
my %rel_in_matrix = map { $_->[0] => 1 } @relations;
my @catalog_relations = split /\n/, $node->safe_psql('postgres', q{
SELECT c.oid::regclass FROM pg_class c
WHERE c.relnamespace = 'virtuoso'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1});
is_deeply([grep { !$rel_in_matrix{$_} } @catalog_relations], [],
    'every table and view of schema virtuoso has a matrix row');
for my $row (@relations)
{
    my ($rel, @expect) = @$row;
    my $sql = $expect[4] // sprintf($sees_alice, $rel =~ s/^virtuoso\.//r);
    for my $i (0 .. $#tags)
    {
        my $tag = $tags[$i];
        # no grant at all: no USAGE on the schema
        my $want = $tag eq 'none' ? '42501' : $expect[$i - 1];
        my $got = outcome($tag, $sql);
        is($got->{outcome}, $want, "$rel [read] as $tag") or diag("stderr: $got->{err}");
        unlike($got->{err}, qr/SHADOW/, "$rel as $tag: no shadowing function or operator runs");
    }
}

# The superuser's calls did reach alice's code (as alice) through planning, rules, stored
# SQL and index expressions: the "only as alice" checks above are not vacuous.
for my $row ('virtuoso.recommend_indexes(bigint,double precision,text,bigint,integer) [plan]',
    'virtuoso.optimize_table_indexes(regclass,boolean) [plan]',
    'virtuoso.verify_migration_integrity(text) [verify]',
    'virtuoso.execute_rollback_with_backup(text,boolean,text) [stored SQL of another role]',
    'virtuoso.execute_top_level(text) [vacuum]',
    'virtuoso.run_top_level(text,text) [reindex]')
{
    ok($trapped{$row}, "$row as super reaches alice's code");
}

$node->stop;
done_testing();
