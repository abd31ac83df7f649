// virtuoso.verify_migration_integrity(migration_name)
#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/migrate/run.hpp"
#include "db_virtuoso/pg/gucs.hpp"

using namespace virtuoso;
using namespace virtuoso::migrate;

VIRTUOSO_FUNCTION(virtuoso_verify_migration) {
    const std::string name = required_text(fcinfo, 0, "migration_name");
    pg::Row run = latest_run(name, "status <> 'DRY_RUN'");
    // Before anything of the run is shown or its stored rules run.
    const RunAccess access(run, name, "verify");
    auto col = [&run](const char *c) { return run[log_column(c)]; };
    const std::string status = col("status").value_or("");
    const std::string affected = col("affected_objects").value_or("[]");
    std::vector<pg::Row> out;

    std::string run_status = status == "SUCCESS"       ? "PASS"
                             : status == "ROLLED_BACK" ? "WARN"
                                                       : "FAIL";
    out.push_back(
        {"migration_status", run_status, name,
         status == "FAILED" || status == "RUNNING"
             ? fmt::format("latest run is {}: {}", status, col("error_message").value_or(""))
             : fmt::format("latest run is {}", status)});
    if (col("transactional") == "f") {
        std::string done = col("statements_done").value_or("0"),
                    total = col("statements_total").value_or("?");
        out.push_back({"statements_completed", done == total ? "PASS" : "FAIL", name,
                       fmt::format("{} of {} statements completed", done, total)});
    }

    // A statement-by-statement rollback that stopped half way leaves the row SUCCESS with
    // its state in rollback_reason (see execute_rollback_with_backup).
    if (status == "SUCCESS" && col("rollback_at"))
        out.push_back(
            {"rollback", "FAIL", name,
             fmt::format("a rollback was left half way: {}", col("rollback_reason").value_or(""))});

    pg::Value rules;
    {
        // catalog checks: internal SQL with a pinned search_path, closed before the rules run
        pg::InternalSql spi;
        // Objects the run created or altered must exist; objects it dropped must stay gone.
        auto objects = spi.execute(
            "SELECT DISTINCT ON (classid, objid, dropped) identity, object_type, dropped, "
            "  pg_describe_object(classid, objid, 0) IS NOT NULL AS present "
            "FROM (SELECT o->>'identity' AS identity, o->>'object_type' AS object_type, "
            "        (o->>'classid')::oid AS classid, (o->>'objid')::oid AS objid, "
            "        o->>'command' = 'DROP' AS dropped "
            "      FROM jsonb_array_elements($1::jsonb) AS o) s "
            // GRANT/REVOKE are captured with no object: nothing to look for
            "WHERE objid IS NOT NULL "
            "ORDER BY classid, objid, dropped",
            {affected});
        int missing = 0;
        for (const auto &o : objects.rows) {
            bool dropped = o[2] == "t", present = o[3] == "t";
            if (dropped == present) {
                ++missing;
                out.push_back({dropped ? "object_dropped" : "object_exists", "FAIL", o[0],
                               fmt::format("{} {} {}", o[1].value_or("object"), o[0].value_or("?"),
                                           dropped ? "was dropped by the migration but exists again"
                                                   : "no longer exists")});
            }
        }
        if (missing == 0)
            out.push_back({"objects", "PASS", std::nullopt,
                           fmt::format("all {} touched objects are as the migration left them",
                                       objects.rows.size())});

        // Relations the run touched, and the tables of the indexes among them.
        const char *touched_tables =
            "SELECT r.oid FROM (SELECT DISTINCT (o->>'objid')::oid AS oid "
            "  FROM jsonb_array_elements($1::jsonb) AS o "
            "  WHERE (o->>'classid')::oid = 'pg_class'::regclass::oid) r "
            "UNION SELECT x.indrelid FROM pg_index x WHERE x.indexrelid IN "
            "  (SELECT (o->>'objid')::oid FROM jsonb_array_elements($1::jsonb) AS o "
            "   WHERE (o->>'classid')::oid = 'pg_class'::regclass::oid)";
        auto invalid = spi.execute(
            fmt::format(
                "SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text FROM pg_index i "
                "WHERE NOT i.indisvalid AND (i.indrelid IN ({0}) OR i.indexrelid IN ({0}))",
                touched_tables),
            {affected});
        for (const auto &i : invalid.rows)
            out.push_back(
                {"invalid_index", "FAIL", i[0],
                 fmt::format("index {} on {} is invalid (a failed concurrent build); drop it "
                             "and build it again",
                             i[0].value_or("?"), i[1].value_or("?"))});
        if (invalid.empty())
            out.push_back(
                {"invalid_index", "PASS", std::nullopt, "no invalid index on the touched tables"});

        auto not_valid =
            spi.execute(fmt::format("SELECT conname, conrelid::regclass::text FROM pg_constraint "
                                    "WHERE NOT convalidated AND conrelid IN ({})",
                                    touched_tables),
                        {affected});
        for (const auto &c : not_valid.rows)
            out.push_back(
                {"not_valid_constraint", "WARN", c[0],
                 fmt::format("constraint {} on {} is NOT VALID: run ALTER TABLE {} VALIDATE "
                             "CONSTRAINT {}",
                             c[0].value_or("?"), c[1].value_or("?"), c[1].value_or("?"),
                             pg::quote_identifier(c[0].value_or("?")))});
        if (not_valid.empty())
            out.push_back({"not_valid_constraint", "PASS", std::nullopt,
                           "no NOT VALID constraint on the touched tables"});

        rules =
            spi.scalar("SELECT $1::jsonb -> 'validation_rules'", {col("options").value_or("{}")});
    }
    if (rules) {
        // Rules are stored SQL: run with the rights of the role that recorded them, with the
        // caller's settings and search_path (for the rules' own SQL only: the wrapper names
        // its type by schema).
        RunAccess::StoredSqlScope as_recorder(access);
        pg::GucScope settings;  // rules read the user's tables: no unbounded lock wait
        settings.set("lock_timeout", std::to_string(gucs::lock_timeout_ms) + "ms");
        pg::Spi user;
        auto results = user.execute(
            "SELECT rule_name, status, validation_message FROM "
            "virtuoso.validate_data_integrity($1::pg_catalog.jsonb)",
            {*rules});
        for (const auto &r : results.rows) out.push_back({"validation_rule", r[1], r[0], r[2]});
    }
    return pg::return_rows(fcinfo, out);
}
