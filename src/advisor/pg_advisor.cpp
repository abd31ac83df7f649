// virtuoso.recommend_indexes, recommend_indexes_for_query, optimize_table_indexes,
// hypothetical_index_cost and advisor_benchmark: the SQL face of the index advisor.
//
// Every run happens inside a subtransaction that is rolled back at the end: the locks that
// analysing statements takes are released, and nothing of the run stays behind.
#include <chrono>
#include <set>

#include "db_virtuoso/advisor/pg_whatif.hpp"
#include "db_virtuoso/core/sql_lexer.hpp"
#include "db_virtuoso/online/index_build.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
}

namespace virtuoso::advisor {
namespace {

using pg::UserError;

struct Analysed {
    std::vector<std::string> texts;
    std::vector<int64_t> calls;
    std::vector<Oid> roles;
    std::vector<List *> queries;  // rewritten Query trees of each statement
    std::vector<QueryDesc> descs;
    Tables tables;
    std::map<Oid, double> writes;  // rows the workload's INSERT/UPDATE/DELETE wrote, by table
    size_t statements = 0, not_analysed = 0;
};

struct Row {
    std::string table;
    std::vector<std::string> columns;
    std::string definition;
    int queries = 0;
    int64_t calls = 0;
    double cost_before = 0, cost_after = 0, improvement_pct = 0;
    bool costs_null = false;  // drop advice: no costs
    int64_t size_bytes = 0;   // negative: the storage a drop frees
    bool applied = false;
    std::string details;  // JSON
};

// Options of recommend_indexes beyond the statements.
struct Limits {
    double min_improvement_pct = 10;
    std::optional<double> max_bytes;
    std::optional<size_t> max_indexes;
    bool drop_advice = false;
};

std::string shorten(const std::string &sql) {
    std::string flat;
    for (char c : sql) flat += (c == '\n' || c == '\t' || c == '\r') ? ' ' : c;
    return flat.size() > 120 ? flat.substr(0, 117) + "..." : flat;
}

std::string error_text(const std::exception &e) {
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    if (auto *pe = dynamic_cast<const pg::PgError *>(&e)) sqlstate = pe->sqlstate();
    if (auto *ue = dynamic_cast<const UserError *>(&e)) sqlstate = ue->sqlstate();
    return fmt::format("{}: {}", unpack_sql_state(sqlstate), e.what());
}

int sqlstate_of(const std::exception &e) {
    if (auto *pe = dynamic_cast<const pg::PgError *>(&e)) return pe->sqlstate();
    if (auto *ue = dynamic_cast<const UserError *>(&e)) return ue->sqlstate();
    return ERRCODE_INTERNAL_ERROR;
}

// Indexes recommended at most when the caller sets no bound.
constexpr size_t kDefaultMaxIndexes = 64;

struct Attempt {
    bool ok = false;
    List *queries = NIL;
    QueryDesc desc;                  // of queries (describe_statement)
    std::vector<TableId> whole_row;  // tables it reads whole rows of
    int sqlstate = 0;
    int position = 0;  // of the error in the text, 0 if none
    std::string message, detail, hint;
};

// Analyses and plans a statement (permissions checked as the executor would) inside a
// subtransaction: a failure is returned, with nothing of it left behind.  Unless
// must_plan, a statement that touches no table an index could serve (a monitoring query
// on the catalogs, a function call) is not planned: it leaves the workload anyway, and
// planning the catalog views was most of the advisor's time on a busy server.
Attempt try_analyse(const std::string &sql, Oid role, const std::vector<Oid> &types,
                    bool must_plan) {
    Attempt a;
    pg::SubTransaction sub;
    try {
        a.queries = analyse_statement(sql, role, types);
        if (a.queries != NIL) {
            a.desc = describe_statement(a.queries, &a.whole_row);
            if (must_plan || !a.desc.tables.empty()) plan_with(a.queries, {}, role, true);
        }
        sub.commit();
        a.ok = true;
    } catch (const std::exception &e) {
        if (pg::ends_the_call(sqlstate_of(e))) {
            sub.rollback();
            throw;
        }
        // copied before the rollback frees the error's memory
        a.sqlstate = sqlstate_of(e);
        a.message = e.what();
        if (auto *pe = dynamic_cast<const pg::PgError *>(&e); pe && pe->data()) {
            if (pe->data()->detail) a.detail = pe->data()->detail;
            if (pe->data()->hint) a.hint = pe->data()->hint;
            a.position = pe->data()->cursorpos;
        }
        sub.rollback();
    }
    return a;
}

// Failures that normalisation by pg_stat_statements can cause: a $n where the grammar wants a
// constant, a parameter whose type nothing determines, or one inferred as text that then
// fits no function or operator.
bool normalisation_may_cause(int sqlstate) {
    return sqlstate == ERRCODE_SYNTAX_ERROR || sqlstate == ERRCODE_INDETERMINATE_DATATYPE ||
           sqlstate == ERRCODE_UNDEFINED_FUNCTION || sqlstate == ERRCODE_DATATYPE_MISMATCH ||
           sqlstate == ERRCODE_AMBIGUOUS_FUNCTION || sqlstate == ERRCODE_AMBIGUOUS_PARAMETER ||
           sqlstate == ERRCODE_INVALID_TEXT_REPRESENTATION ||
           sqlstate == ERRCODE_INVALID_DATETIME_FORMAT;
}

// Types tried, one parameter at a time, for a parameter the context leaves open.
constexpr Oid kTriedTypes[] = {NUMERICOID,     INT8OID,   TEXTOID, DATEOID,
                               TIMESTAMPTZOID, FLOAT8OID, BOOLOID, INTERVALOID};
constexpr int kMaxTriedParameters = 32;

// The statement analysed as written; when that fails in a way normalisation can cause,
// with constants in constant-only positions (repair_normalised), then with each parameter
// given each of kTriedTypes in turn, one parameter at a time; then again, keeping a type
// after which the same error appears elsewhere in the text while the next parameters are
// tried (several open positions).  The first way that
// analyses and plans wins; when none does, the error of the statement as written is raised.
Attempt analyse_understood(const WorkloadStatement &st, bool must_plan) {
    Attempt first = try_analyse(st.text, st.role, {}, must_plan);
    if (first.ok) return first;
    if (normalisation_may_cause(first.sqlstate)) {
        std::string repaired = repair_normalised(st.text);
        Attempt now = first;  // the error to get past
        if (repaired != st.text) {
            now = try_analyse(repaired, st.role, {}, must_plan);
            if (now.ok) return now;
        }
        int n = parameter_count(repaired);
        if (n > 0 && n <= kMaxTriedParameters) {
            for (size_t i = 0; i < static_cast<size_t>(n); ++i)
                for (Oid type : kTriedTypes) {
                    std::vector<Oid> types(static_cast<size_t>(n), InvalidOid);
                    types[i] = type;
                    Attempt a = try_analyse(repaired, st.role, types, must_plan);
                    if (a.ok) return a;
                }
            // The same error elsewhere in the text: this type got past one occurrence.
            std::vector<Oid> kept(static_cast<size_t>(n), InvalidOid);
            for (bool progress = true; progress;) {
                progress = false;
                for (size_t i = 0; i < kept.size() && !progress; ++i) {
                    if (OidIsValid(kept[i])) continue;
                    for (Oid type : kTriedTypes) {
                        std::vector<Oid> types = kept;
                        types[i] = type;
                        Attempt a = try_analyse(repaired, st.role, types, must_plan);
                        if (a.ok) return a;
                        if (a.sqlstate == now.sqlstate && a.message == now.message &&
                            a.position != now.position) {
                            now = std::move(a);
                            kept = std::move(types);
                            progress = true;
                            break;
                        }
                    }
                }
            }
        }
    }
    throw UserError(first.sqlstate, first.message, first.detail, first.hint);
}

// An INSERT of constants or generated rows (pg_stat_statements keeps one entry per row count
// of a VALUES list, and one per table a migration fills) needs no analysis: no index serves
// it, only the rows it wrote count.  True when st is one, its rows counted.
bool counted_as_plain_insert(Analysed &an, const WorkloadStatement &st) {
    std::optional<Oid> target;
    pg::SubTransaction probe;
    try {
        target = plain_insert_target(st.text, st.role);
        probe.commit();
    } catch (const pg::PgError &e) {
        probe.rollback();
        // The full analysis repairs what normalisation broke; other errors it would meet too.
        if (!normalisation_may_cause(e.sqlstate())) throw;
    }
    if (!target) return false;
    an.writes[*target] += st.rows;
    return true;
}

// Analyses one statement and adds it to the workload.  A statement given by hand must be a
// query; one from the workload that is a utility statement, or touches no table an index
// could serve, is left out silently.
void analyse_one(Analysed &an, const WorkloadStatement &st, std::vector<TableId> &whole_row,
                 bool given_by_hand) {
    Attempt understood = analyse_understood(st, given_by_hand);
    List *queries = understood.queries;
    if (queries == NIL) {
        if (given_by_hand)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            "query must be one SELECT, INSERT, UPDATE or DELETE statement", "",
                            "Pass the statement whose indexes are to be advised.");
        return;
    }
    // The rows a writing statement wrote maintain every index of its target table.
    ListCell *lc;
    foreach (lc, queries) {
        auto *q = static_cast<Query *>(lfirst(lc));
        if ((q->commandType == CMD_INSERT || q->commandType == CMD_UPDATE ||
             q->commandType == CMD_DELETE) &&
            q->resultRelation > 0 && q->resultRelation <= list_length(q->rtable))
            an.writes[rt_fetch(q->resultRelation, q->rtable)->relid] += st.rows;
    }
    // Plannable, and readable by its role as the executor checks (the caller has that role's
    // privileges: see workload()): analyse_understood planned it so.  Nothing is revealed
    // about tables the caller cannot read.
    whole_row.insert(whole_row.end(), understood.whole_row.begin(), understood.whole_row.end());
    QueryDesc desc = std::move(understood.desc);
    if (desc.tables.empty() && !given_by_hand) return;
    desc.weight = st.weight;
    an.texts.push_back(st.text);
    an.calls.push_back(st.calls);
    an.roles.push_back(st.role);
    an.queries.push_back(queries);
    an.descs.push_back(std::move(desc));
}

// Analyses the statements.  raise_errors: the first failure is the caller's error (one
// statement given by hand); otherwise a statement that fails is reported with a NOTICE and
// left out, and the others go on.
Analysed analyse_workload(const std::vector<WorkloadStatement> &statements, bool raise_errors) {
    Analysed an;
    std::vector<TableId> whole_row;
    for (const WorkloadStatement &st : statements) {
        ++an.statements;
        if (raise_errors) {
            analyse_one(an, st, whole_row, true);
            continue;
        }
        // A utility statement (pg_stat_statements holds every CREATE, VACUUM, BEGIN run at
        // top level) is left out before it costs a subtransaction and the parser: on a busy
        // server with many migrations those were most of the advisor's time.
        std::optional<core::Token> first = core::leading_word(st.text);
        if (!core::may_be_query(first)) continue;
        pg::SubTransaction sub;
        try {
            if (!(first->is_keyword("INSERT") && counted_as_plain_insert(an, st)))
                analyse_one(an, st, whole_row, false);
            sub.commit();
        } catch (const std::exception &e) {
            std::string reason = error_text(e);
            sub.rollback();
            if (pg::ends_the_call(sqlstate_of(e))) throw;  // a cancel is not one statement's
            ++an.not_analysed;
            pg::report(NOTICE, fmt::format("index advisor: statement not analysed ({}): {}", reason,
                                           shorten(st.text)));
        }
    }
    for (const QueryDesc &d : an.descs)
        for (const TableUse &tu : d.tables)
            if (!an.tables.count(tu.table)) {
                an.tables[tu.table] = describe_table(tu.table);
                auto w = an.writes.find(tu.table);
                an.tables[tu.table].writes = w == an.writes.end() ? 0 : w->second;
            }
    // A sample of the columns the statements may index, per table, to size multi-column
    // keys whose columns depend on each other.
    std::map<TableId, std::set<AttrNum>> used;
    for (const QueryDesc &d : an.descs)
        for (const TableUse &tu : d.tables)
            for (const ColumnUse &u : tu.uses) used[tu.table].insert(u.attnum);
    for (const auto &[table, columns] : used) sample_table(table, columns, an.tables[table]);
    // A statement that reads whole rows (t.*) reads every column.
    for (QueryDesc &d : an.descs)
        for (TableUse &tu : d.tables)
            if (std::find(whole_row.begin(), whole_row.end(), tu.table) != whole_row.end())
                for (const auto &[attnum, col] : an.tables[tu.table].columns)
                    if (std::find(tu.referenced.begin(), tu.referenced.end(), attnum) ==
                        tu.referenced.end())
                        tu.referenced.push_back(attnum);
    return an;
}

Hypothetical hypothetical(const Candidate &c, const Tables &tables) {
    Hypothetical h;
    h.table = c.table;
    h.keys = c.keys;
    h.include = c.include;
    h.predicate = c.predicate;
    h.size = c.size;
    double tuples = tables.at(c.table).tuples;
    h.tuple_fraction = tuples > 0 ? std::min(1.0, c.size.tuples / tuples) : 1;
    return h;
}

CostFn make_cost_fn(const Analysed &an, const std::vector<Candidate> &candidates) {
    return [&an, &candidates](size_t q, const std::vector<size_t> &config) {
        std::vector<Hypothetical> hs;
        for (size_t c : config) hs.push_back(hypothetical(candidates[c], an.tables));
        PlanCost pc = plan_with(an.queries[q], hs, an.roles[q]);
        for (size_t &u : pc.used) u = config[u];
        return pc;
    };
}

std::vector<Row> rows_of(const Analysed &an, const std::vector<Candidate> &candidates,
                         const Selection &selection) {
    std::vector<Row> rows;
    for (const Recommendation &r : selection.recommendations) {
        if (r.queries.empty()) continue;
        const Candidate &c = candidates[r.candidate];
        const TableInfo &t = an.tables.at(c.table);
        Row row;
        row.table = t.name;
        for (AttrNum a : c.keys) row.columns.push_back(t.columns.at(a).name);
        row.definition = index_definition(c, t, pg::quote_identifier);
        row.queries = static_cast<int>(r.queries.size());
        for (size_t q : r.queries) row.calls += an.calls[q];
        row.cost_before = r.cost_before;
        row.cost_after = r.cost_after;
        row.improvement_pct = r.improvement_pct();
        row.size_bytes = static_cast<int64_t>(c.size.bytes());
        std::string served;
        for (size_t i = 0; i < r.queries.size(); ++i) {
            size_t q = r.queries[i];
            if (!served.empty()) served += ", ";
            served += fmt::format(
                "{{\"query\": {}, \"calls\": {}, \"cost_before\": {:.2f}, \"cost_after\": {:.2f}}}",
                json_quote(an.texts[q]), an.calls[q], r.query_before[i], r.query_after[i]);
        }
        row.details = fmt::format("{{\"action\": \"create\", \"statements\": [{}]}}", served);
        rows.push_back(std::move(row));
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) {
        return a.cost_before - a.cost_after > b.cost_before - b.cost_after;
    });
    return rows;
}

// An existing B-tree index of a workload table, as drop advice needs it.
struct ExistingRow {
    Oid oid = InvalidOid;
    std::string name;  // schema-qualified, quoted
    std::vector<AttrNum> keys, include;
    std::vector<std::string> opclasses, collations, options;  // of the key columns
    std::optional<std::string> predicate;
    bool expressions = false, unique = false, enforces = false;
    int64_t bytes = 0, scans = 0;
    std::optional<std::string> covering;  // redundant to this other existing index
};

std::vector<std::string> words(const std::string &text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find(' ', pos);
        if (end == std::string::npos) end = text.size();
        if (end > pos) out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

// The B-tree indexes of a table, and which of them virtuoso.redundant_indexes would list
// (its rule: same predicate, operator classes, collations and orders, keys a leading prefix
// and every column present, redundant_by_view_rule; of identical ones the newer).  Read from
// the catalogs rather than the view, which the caller need not be allowed to read.
std::vector<ExistingRow> existing_indexes(Oid table) {
    pg::InternalSql spi;
    auto result = spi.execute(
        "SELECT i.indexrelid, pg_catalog.format('%I.%I', n.nspname, c.relname), i.indnkeyatts, "
        "i.indkey::pg_catalog.text, i.indclass::pg_catalog.text, "
        "i.indcollation::pg_catalog.text, i.indoption::pg_catalog.text, "
        "pg_catalog.pg_get_expr(i.indpred, i.indrelid), i.indexprs IS NOT NULL, "
        "i.indisunique OR i.indisprimary, "
        "i.indisunique OR i.indisprimary OR i.indisexclusion OR EXISTS (SELECT 1 FROM "
        "pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid), "
        "pg_catalog.pg_relation_size(i.indexrelid), coalesce(s.idx_scan, 0) "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_am a ON a.oid = c.relam "
        "LEFT JOIN pg_catalog.pg_stat_user_indexes s ON s.indexrelid = i.indexrelid "
        "WHERE i.indrelid = $1::pg_catalog.oid AND a.amname = 'btree' AND i.indisvalid "
        "ORDER BY c.relname",
        {std::to_string(table)}, true);
    std::vector<ExistingRow> out;
    for (const auto &row : result.rows) {
        ExistingRow e;
        e.oid = static_cast<Oid>(std::stoul(*row[0]));
        e.name = *row[1];
        size_t nkeys = static_cast<size_t>(std::stoi(*row[2]));
        std::vector<std::string> cols = words(*row[3]);
        for (size_t k = 0; k < cols.size(); ++k)
            (k < nkeys ? e.keys : e.include).push_back(std::stoi(cols[k]));
        e.opclasses = words(*row[4]);
        e.collations = words(*row[5]);
        e.options = words(*row[6]);
        if (row[7]) e.predicate = *row[7];
        e.expressions = *row[8] == "t";
        e.unique = *row[9] == "t";
        e.enforces = *row[10] == "t";
        e.bytes = std::stoll(*row[11]);
        e.scans = std::stoll(*row[12]);
        out.push_back(std::move(e));
    }
    for (ExistingRow &r : out) {
        if (r.enforces || r.expressions) continue;
        for (const ExistingRow &k : out) {
            if (k.oid == r.oid || k.expressions || !(k.predicate == r.predicate)) continue;
            size_t n = r.keys.size();
            auto same_prefix = [n](const std::vector<std::string> &a,
                                   const std::vector<std::string> &b) {
                return a.size() >= n && b.size() >= n &&
                       std::equal(a.begin(), a.begin() + n, b.begin());
            };
            if (!same_prefix(r.opclasses, k.opclasses) ||
                !same_prefix(r.collations, k.collations) || !same_prefix(r.options, k.options))
                continue;
            if (!redundant_by_view_rule(r.keys, r.include, std::nullopt, k.keys, k.include,
                                        std::nullopt))
                continue;
            // Of two identical indexes, the newer (or the non-unique) one is redundant.
            bool identical = r.keys == k.keys && r.include == k.include;
            if (identical && k.unique == r.unique && k.oid > r.oid) continue;
            r.covering = k.name;
            break;
        }
    }
    return out;
}

// Existing indexes of the workload's tables that the workload does not need: superseded by
// a recommended index (by the rule of virtuoso.redundant_indexes, redundant_by_view_rule),
// redundant to another existing index (the same rule), or never scanned since the
// statistics were reset (idx_scan = 0).  Indexes that enforce a constraint or uniqueness
// are kept.  Each row frees the index's size (estimated_size_bytes is its negative).
std::vector<Row> drop_advice(const Analysed &an, const std::vector<Candidate> &candidates,
                             const Selection &selection) {
    std::vector<Row> rows;
    for (const auto &[table, info] : an.tables) {
        for (const ExistingRow &e : existing_indexes(table)) {
            if (e.enforces) continue;
            std::string reason, by;
            if (!e.predicate && !e.expressions)
                for (const Recommendation &r : selection.recommendations) {
                    const Candidate &c = candidates[r.candidate];
                    if (r.queries.empty() || c.table != table || c.predicate) continue;
                    if (redundant_by_view_rule(e.keys, e.include, std::nullopt, c.keys, c.include,
                                               std::nullopt)) {
                        reason = "superseded";
                        by = index_definition(c, info, pg::quote_identifier);
                        break;
                    }
                }
            if (reason.empty() && e.covering) {
                reason = "redundant";
                by = *e.covering;
            }
            if (reason.empty() && e.scans == 0) reason = "unused";
            if (reason.empty()) continue;
            Row row;
            row.table = info.name;
            for (AttrNum a : e.keys) {
                auto col = info.columns.find(a);
                row.columns.push_back(col == info.columns.end() ? std::to_string(a)
                                                                : col->second.name);
            }
            row.definition = "DROP INDEX CONCURRENTLY " + e.name;
            row.costs_null = true;
            row.size_bytes = -e.bytes;
            row.details = fmt::format(
                "{{\"action\": \"drop\", \"reason\": {}, \"index\": {}, \"frees_bytes\": {}{}}}",
                json_quote(reason), json_quote(e.name), e.bytes,
                by.empty() ? std::string() : ", \"covered_by\": " + json_quote(by));
            rows.push_back(std::move(row));
        }
    }
    return rows;
}

std::vector<Row> recommend(const std::vector<WorkloadStatement> &statements, bool raise_errors,
                           const Limits &limits, Oid only_table) {
    begin_costing();
    pg::SubTransaction run;  // rolled back: releases the locks, leaves nothing behind
    // A workload statement on a table someone holds locked is reported (55P03), not waited
    // for: analysing it waits at most virtuoso.lock_timeout (or a shorter lock_timeout).
    Analysed an;
    {
        pg::GucScope guc;  // ends before the subtransaction does
        if (!raise_errors && gucs::lock_timeout_ms > 0 &&
            (LockTimeout == 0 || LockTimeout > gucs::lock_timeout_ms))
            guc.set("lock_timeout", std::to_string(gucs::lock_timeout_ms) + "ms");
        an = analyse_workload(statements, raise_errors);
    }
    // One statement given by hand is no workload: the write penalty is about workloads.
    if (raise_errors)
        for (auto &[id, table] : an.tables) table.writes = 0;
    std::vector<Candidate> candidates = generate_candidates(an.descs, an.tables);
    if (OidIsValid(only_table))
        candidates.erase(
            std::remove_if(candidates.begin(), candidates.end(),
                           [only_table](const Candidate &c) { return c.table != only_table; }),
            candidates.end());
    SelectionOptions options;
    options.min_improvement_pct = limits.min_improvement_pct;
    options.max_bytes = limits.max_bytes;
    options.max_indexes = limits.max_indexes.value_or(kDefaultMaxIndexes);
    options.random_page_cost = random_page_cost;
    options.cpu_operator_cost = cpu_operator_cost;
    // Writes are counted in rows, the workload in its weights (calls or milliseconds).
    double weights = 0, calls = 0;
    for (size_t q = 0; q < an.descs.size(); ++q) {
        weights += an.descs[q].weight;
        calls += static_cast<double>(an.calls[q]);
    }
    options.weight_per_call = calls > 0 ? weights / calls : 1;
    CostFn cost = make_cost_fn(an, candidates);
    Selection selection = select_greedy(an.descs, candidates, an.tables, cost, options);
    std::vector<Row> rows = rows_of(an, candidates, selection);
    if (limits.drop_advice) {
        std::vector<Row> drops = drop_advice(an, candidates, selection);
        rows.insert(rows.end(), drops.begin(), drops.end());
    }
    run.rollback();
    return rows;
}

// Raises 42501 unless the caller may read the table (or some of its columns: then it can
// count its rows too), so that nothing about its size is revealed otherwise.
void require_select(Oid relid) {
    bool allowed = pg::pg_call([relid] {
        return pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK ||
               pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) ==
                   ACLCHECK_OK;
    });
    if (!allowed)
        throw UserError(
            ERRCODE_INSUFFICIENT_PRIVILEGE,
            fmt::format("permission denied for table {}", pg::qualified_relation_name(relid)));
}

std::vector<WorkloadStatement> workload(int64_t min_calls, bool by_total_time) {
    WorkloadQuery query;
    query.min_calls = min_calls;
    query.weight_by_total_time = by_total_time;
    size_t skipped = 0;
    std::vector<WorkloadStatement> out = read_workload(query, &skipped);
    if (skipped > 0)
        pg::report(NOTICE, fmt::format("index advisor: {} statement(s) not analysed: they were run "
                                       "by roles whose privileges the caller does not have, or "
                                       "that no longer exist",
                                       skipped));
    return out;
}

Datum text_array(const std::vector<std::string> &items) {
    return pg::pg_call([&items] {
        Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (items.size() + 1)));
        for (size_t i = 0; i < items.size(); ++i) elems[i] = CStringGetTextDatum(items[i].c_str());
        return PointerGetDatum(construct_array(elems, static_cast<int>(items.size()), TEXTOID, -1,
                                               false, TYPALIGN_INT));
    });
}

// Detoasting and conversion can raise PostgreSQL errors: all of it runs inside pg_call.
std::vector<std::string> text_array_arg(FunctionCallInfo fcinfo, int argno, const char *what) {
    std::vector<std::string> out;
    if (PG_ARGISNULL(argno)) return out;
    Datum *elems;
    bool *nulls;
    int n;
    pg::pg_call([&] {
        ArrayType *array = PG_GETARG_ARRAYTYPE_P(argno);
        if (ARR_NDIM(array) > 1)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("%s must be a one-dimensional array", what)));
        deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    });
    for (int i = 0; i < n; ++i) {
        if (nulls[i])
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            fmt::format("{} must not contain NULL", what));
        Datum elem = elems[i];
        out.push_back(pg::pg_call([elem] { return std::string(TextDatumGetCString(elem)); }));
    }
    return out;
}

// What the 10th column of the result is: none, applied (optimize_table_indexes) or details
// (recommend_indexes).
enum class Tenth { None, Applied, Details };

void emit(FunctionCallInfo fcinfo, const std::vector<Row> &rows, Tenth tenth = Tenth::None) {
    pg::pg_call([fcinfo] { InitMaterializedSRF(fcinfo, 0); });
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    for (const Row &r : rows) {
        Datum values[10];
        bool nulls[10] = {false};
        values[0] = pg::text_datum(r.table);
        values[1] = text_array(r.columns);
        values[2] = pg::text_datum(r.definition);
        values[3] = Int32GetDatum(r.queries);
        values[4] = Int64GetDatum(r.calls);
        values[5] = Float8GetDatum(r.cost_before);
        values[6] = Float8GetDatum(r.cost_after);
        values[7] = Float8GetDatum(r.improvement_pct);
        nulls[5] = nulls[6] = nulls[7] = r.costs_null;
        values[8] = Int64GetDatum(r.size_bytes);
        values[9] = BoolGetDatum(r.applied);
        if (tenth == Tenth::Details) {
            const char *json = r.details.c_str();
            values[9] = pg::pg_call(
                [json] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json)); });
        }
        pg::pg_call(
            [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
}

double improvement_arg(FunctionCallInfo fcinfo, int argno) {
    if (PG_ARGISNULL(argno))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "min_improvement_pct must not be NULL");
    double v = PG_GETARG_FLOAT8(argno);
    if (!(v >= 0 && v <= 100))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("min_improvement_pct must be between 0 and 100, got {}", v));
    return v;
}

int64_t min_calls_arg(FunctionCallInfo fcinfo, int argno) {
    if (PG_ARGISNULL(argno))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "min_calls must not be NULL");
    int64_t v = PG_GETARG_INT64(argno);
    if (v < 0)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("min_calls must not be negative, got {}", v));
    return v;
}

bool weight_by_time_arg(FunctionCallInfo fcinfo, int argno) {
    auto w = PG_NARGS() > argno ? pg::text_arg(fcinfo, argno) : pg::Value{"calls"};
    if (w && *w == "calls") return false;
    if (w && *w == "total_time") return true;
    throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                    fmt::format("weight_by must be 'calls' or 'total_time', got {}",
                                w ? "'" + *w + "'" : std::string("NULL")));
}

Oid table_arg(FunctionCallInfo fcinfo, int argno) {
    if (PG_ARGISNULL(argno))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "table_name must not be NULL");
    Oid relid = PG_GETARG_OID(argno);
    char kind = pg::pg_call([relid] { return get_rel_relkind(relid); });
    if (kind != RELKIND_RELATION && kind != RELKIND_MATVIEW)
        throw UserError(
            ERRCODE_WRONG_OBJECT_TYPE,
            fmt::format("{} is not a table or materialized view",
                        kind == '\0' ? std::to_string(relid) : pg::qualified_relation_name(relid)),
            "", "Indexes are advised for tables and materialized views.");
    return relid;
}

std::string query_arg(FunctionCallInfo fcinfo, int argno) {
    auto q = pg::text_arg(fcinfo, argno);
    if (!q || q->find_first_not_of(" \t\r\n;") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "query must not be NULL or empty", "",
                        "Pass one SELECT, INSERT, UPDATE or DELETE statement.");
    return *q;
}

}  // namespace

// ---- shared with the migration gate (pg_whatif.hpp) ---------------------------------------

bool may_act_as(Oid role) {
    return pg::pg_call([role] {
        return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)) &&
               has_privs_of_role(GetUserId(), role);
    });
}

std::vector<WorkloadStatement> read_workload(const WorkloadQuery &query, size_t *skipped) {
    pg::InternalSql spi;
    auto schema = spi.scalar(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'",
        {}, true);
    if (!schema)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "pg_stat_statements is not installed in this database",
                        "The index advisor and the migration gate (max_plan_regression) take "
                        "their workload from pg_stat_statements.",
                        "Add pg_stat_statements to shared_preload_libraries and run CREATE "
                        "EXTENSION pg_stat_statements.");
    auto result = spi.execute(
        fmt::format("SELECT userid, query, sum(calls)::bigint, sum(total_exec_time), sum(rows), "
                    "array_agg(DISTINCT queryid)::text "
                    "FROM {}.pg_stat_statements "
                    "WHERE toplevel AND dbid = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND query IS NOT NULL AND query <> '<insufficient privilege>' "
                    "GROUP BY userid, query HAVING sum(calls) >= $1::bigint ORDER BY {} DESC, 2, 1",
                    pg::quote_identifier(*schema), query.order_by_total_time ? 4 : 3),
        {std::to_string(query.min_calls)}, true);
    std::vector<WorkloadStatement> out;
    if (skipped) *skipped = 0;
    for (const auto &row : result.rows) {
        WorkloadStatement st;
        st.role = static_cast<Oid>(std::stoul(*row[0]));
        // A statement is planned as the role that ran it, with the caller's search_path:
        // only a caller who has that role's privileges (could SET ROLE to it and run the
        // statement himself) may do that, or it would choose what code runs as that role.
        if (!may_act_as(st.role)) {
            if (skipped) ++*skipped;
            continue;
        }
        st.text = *row[1];
        st.calls = std::stoll(*row[2]);
        st.total_ms = std::stod(*row[3]);
        st.weight = query.weight_by_total_time ? st.total_ms : static_cast<double>(st.calls);
        st.rows = row[4] ? std::stod(*row[4]) : 0;
        // "{1,-2}": the entries of the text (one per queryid, toplevel and user alike).
        std::string ids = row[5].value_or("{}");
        for (size_t at = 1; at < ids.size();) {
            size_t end = ids.find_first_of(",}", at);
            if (end == std::string::npos || end == at) break;
            st.queryids.push_back(std::stoll(ids.substr(at, end - at)));
            at = end + 1;
        }
        out.push_back(std::move(st));
    }
    return out;
}

}  // namespace virtuoso::advisor

using namespace virtuoso;
using namespace virtuoso::advisor;

namespace {

// max_index_bytes and max_indexes of recommend_indexes and advisor_benchmark (argument
// numbers bytes_arg and count_arg, NULL: no bound) into limits.
void read_budget_args(FunctionCallInfo fcinfo, int bytes_arg, int count_arg, Limits *limits) {
    if (PG_NARGS() > bytes_arg && !PG_ARGISNULL(bytes_arg)) {
        int64_t bytes = PG_GETARG_INT64(bytes_arg);
        if (bytes < 0)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            fmt::format("max_index_bytes must not be negative, got {}", bytes), "",
                            "NULL sets no storage budget.");
        limits->max_bytes = static_cast<double>(bytes);
    }
    if (PG_NARGS() > count_arg && !PG_ARGISNULL(count_arg)) {
        int32 count = PG_GETARG_INT32(count_arg);
        if (count < 0 || count > 1000)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            fmt::format("max_indexes must be between 0 and 1000, got {}", count),
                            "", "NULL sets no bound beyond the lean threshold.");
        limits->max_indexes = static_cast<size_t>(count);
    }
}

}  // namespace

VIRTUOSO_FUNCTION(virtuoso_recommend_indexes) {
    int64_t min_calls = min_calls_arg(fcinfo, 0);
    Limits limits;
    limits.min_improvement_pct = improvement_arg(fcinfo, 1);
    bool by_time = weight_by_time_arg(fcinfo, 2);
    read_budget_args(fcinfo, 3, 4, &limits);
    limits.drop_advice = true;
    emit(fcinfo, recommend(workload(min_calls, by_time), false, limits, InvalidOid),
         Tenth::Details);
    return (Datum)0;
}

VIRTUOSO_FUNCTION(virtuoso_recommend_indexes_for_query) {
    std::string query = query_arg(fcinfo, 0);
    // The caller's own statement, planned as the caller, inside a security-restricted
    // operation all the same.
    emit(fcinfo,
         recommend({WorkloadStatement{query, GetUserId(), 1, 1}}, true, Limits{}, InvalidOid));
    return (Datum)0;
}

VIRTUOSO_FUNCTION(virtuoso_optimize_table_indexes) {
    Oid table = table_arg(fcinfo, 0);
    require_select(table);
    bool apply = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
    std::vector<Row> rows = recommend(workload(1, false), false, Limits{}, table);
    if (apply) {
        for (Row &r : rows) {
            pg::SubTransaction sub;
            try {
                online::IndexBuildResult built = online::build_index_concurrently(r.definition, 3);
                sub.commit();
                r.applied = true;
                pg::report(NOTICE, fmt::format("index advisor: built {} ({} attempt(s))",
                                               built.index_name, built.attempts));
            } catch (const std::exception &e) {
                std::string reason = error_text(e);
                sub.rollback();
                pg::report(WARNING, fmt::format("index advisor: could not build \"{}\" ({})",
                                                r.definition, reason));
            }
        }
    }
    emit(fcinfo, rows, Tenth::Applied);
    return (Datum)0;
}

VIRTUOSO_FUNCTION(virtuoso_hypothetical_index_cost) {
    std::string query = query_arg(fcinfo, 0);
    Oid table = table_arg(fcinfo, 1);
    require_select(table);  // its estimated index size is part of the result
    std::optional<uint64_t> index_pages;
    if (!PG_ARGISNULL(4)) {
        int64 pages = PG_GETARG_INT64(4);
        if (pages < 1 || pages > static_cast<int64>(MaxBlockNumber))
            throw UserError(
                ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("index_pages must be between 1 and {}, got {}", MaxBlockNumber, pages));
        index_pages = static_cast<uint64_t>(pages);
    }
    std::optional<int> tree_height;
    if (!PG_ARGISNULL(5)) {
        int32 height = PG_GETARG_INT32(5);
        // -1: unknown, the planner derives it from the pages (as for hypopg's indexes).
        if (height < -1 || height > kMaxTreeHeight)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            fmt::format("tree_height must be between -1 and {}, got {}",
                                        kMaxTreeHeight, height),
                            "", "-1 lets the planner derive the height from the index pages.");
        tree_height = height;
    }
    std::vector<std::string> key_names = text_array_arg(fcinfo, 2, "key_columns");
    std::vector<std::string> include_names = text_array_arg(fcinfo, 3, "include_columns");
    if (key_names.empty() || key_names.size() + include_names.size() > INDEX_MAX_KEYS)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("key_columns must name 1 to {} columns", INDEX_MAX_KEYS));
    auto attnums = [table](const std::vector<std::string> &names) {
        std::vector<AttrNum> out;
        for (const std::string &n : names) {
            AttrNumber a = pg::pg_call([&] { return get_attnum(table, n.c_str()); });
            if (a <= 0)
                throw UserError(ERRCODE_UNDEFINED_COLUMN,
                                fmt::format("column \"{}\" of {} does not exist", n,
                                            pg::qualified_relation_name(table)));
            out.push_back(a);
        }
        return out;
    };
    Hypothetical h;
    h.table = table;
    h.keys = attnums(key_names);
    h.include = attnums(include_names);

    begin_costing();
    pg::SubTransaction run;
    List *queries = analyse_statement(query, GetUserId());
    if (queries == NIL)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "query must be one SELECT, INSERT, UPDATE or DELETE statement");
    TableInfo info = describe_table(table);
    // Checked again under the lock: a column dropped meanwhile is gone from info.
    for (AttrNum a : h.include)
        if (!info.columns.count(a))
            throw UserError(ERRCODE_UNDEFINED_COLUMN, "an include column no longer exists");
    for (AttrNum a : h.keys) {
        auto col = info.columns.find(a);
        if (col == info.columns.end())
            throw UserError(ERRCODE_UNDEFINED_COLUMN, "a key column no longer exists");
        if (!col->second.btree)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            fmt::format("column \"{}\" has no default B-tree operator class",
                                        col->second.name));
    }
    sample_table(table, std::set<AttrNum>(h.keys.begin(), h.keys.end()), info);
    BtreeSize estimate = estimate_btree_size(info, h.keys, h.include, std::nullopt);
    h.size = estimate;
    if (index_pages) h.size.pages = *index_pages;
    if (tree_height) h.size.tree_height = *tree_height;
    double without = plan_with(queries, {}, GetUserId(), true).cost;
    PlanCost with = plan_with(queries, {h}, GetUserId());
    run.rollback();

    pg::pg_call([fcinfo] { InitMaterializedSRF(fcinfo, 0); });
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    Datum values[6] = {Float8GetDatum(without),
                       Float8GetDatum(with.cost),
                       BoolGetDatum(!with.used.empty()),
                       Int64GetDatum(static_cast<int64>(estimate.pages)),
                       Int64GetDatum(static_cast<int64>(estimate.bytes())),
                       Int32GetDatum(estimate.tree_height)};
    bool nulls[6] = {false};
    pg::pg_call([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    return (Datum)0;
}

VIRTUOSO_FUNCTION(virtuoso_advisor_benchmark) {
    int64_t min_calls = min_calls_arg(fcinfo, 0);
    int per_group = PG_ARGISNULL(1) ? 12 : PG_GETARG_INT32(1);
    if (per_group < 1 || per_group > 16)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "candidates_per_group must be between 1 and 16 (the exhaustive search "
                        "plans 2^n configurations)");
    // A storage budget of its own (e.g. the real bytes of Extend's set, built): our answer
    // within it as recommend_indexes(max_index_bytes => ...) gives it.
    Limits budget_limits;
    read_budget_args(fcinfo, 2, 3, &budget_limits);
    const std::optional<double> budget_bytes = budget_limits.max_bytes;
    auto start = std::chrono::steady_clock::now();
    PlanCounters at_start = plan_counters();
    std::vector<std::pair<std::string, double>> figures;
    // Extend's set at our storage and ours within budget_bytes, to build: (definition,
    // estimated bytes).
    std::vector<std::pair<std::string, uint64_t>> extend_definitions, budget_definitions;
    {
        begin_costing();
        pg::SubTransaction run;
        std::vector<WorkloadStatement> statements = workload(min_calls, false);
        Analysed an = analyse_workload(statements, false);
        std::vector<Candidate> all = generate_candidates(an.descs, an.tables);
        CostFn all_cost = make_cost_fn(an, all);
        std::vector<size_t> top = top_candidates_per_group(an.descs, all, all_cost, per_group);
        std::vector<Candidate> compared;
        for (size_t c : top) compared.push_back(all[c]);
        CostFn cost = make_cost_fn(an, compared);
        PlanCounters before_greedy = plan_counters();
        auto greedy_start = std::chrono::steady_clock::now();
        // Against the exhaustive search over the same candidates: no growing, no lean stop.
        SelectionOptions same_candidates;
        same_candidates.widen = false;
        same_candidates.min_benefit_per_byte_share = 0;
        Selection greedy = select_greedy(an.descs, compared, an.tables, cost, same_candidates);
        double greedy_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - greedy_start).count();
        uint64_t greedy_plans = plan_counters().plans - before_greedy.plans;
        std::vector<size_t> every(compared.size());
        for (size_t i = 0; i < every.size(); ++i) every[i] = i;
        Selection best = select_exhaustive(an.descs, compared, every, cost);

        // Our default (lean) answer over every candidate, the reference Extend at the same
        // estimated storage, Extend unbounded, and ours within Extend's unbounded storage.
        auto bytes_of = [](const std::vector<Candidate> &cs, const Selection &sel) {
            double b = 0;
            for (size_t c : sel.chosen) b += static_cast<double>(cs[c].size.bytes());
            return b;
        };
        auto cost_pct = [](const Selection &sel) {
            return sel.workload_before > 0 ? 100 * sel.workload_after / sel.workload_before : 100;
        };
        SelectionOptions lean;
        lean.max_indexes = 64;
        std::vector<Candidate> ours_cs = all;
        CostFn ours_cost = make_cost_fn(an, ours_cs);
        auto ours_start = std::chrono::steady_clock::now();
        Selection ours = select_greedy(an.descs, ours_cs, an.tables, ours_cost, lean);
        double ours_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - ours_start).count();
        double ours_bytes = bytes_of(ours_cs, ours);
        std::vector<Candidate> ext_cs;
        CostFn ext_cost = make_cost_fn(an, ext_cs);
        auto ext_start = std::chrono::steady_clock::now();
        Selection ext = select_extend(an.descs, ext_cs, an.tables, ext_cost, ours_bytes);
        double ext_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - ext_start).count();
        for (size_t c : ext.chosen)
            extend_definitions.emplace_back(
                index_definition(ext_cs[c], an.tables.at(ext_cs[c].table), pg::quote_identifier),
                ext_cs[c].size.bytes());
        std::vector<Candidate> extu_cs;
        CostFn extu_cost = make_cost_fn(an, extu_cs);
        Selection extu = select_extend(an.descs, extu_cs, an.tables, extu_cost, 1e18);
        double extu_bytes = bytes_of(extu_cs, extu);
        std::vector<Candidate> oursb_cs = all;
        CostFn oursb_cost = make_cost_fn(an, oursb_cs);
        SelectionOptions budget = lean;
        budget.max_bytes = extu_bytes;
        Selection oursb = select_greedy(an.descs, oursb_cs, an.tables, oursb_cost, budget);
        std::vector<std::pair<std::string, double>> within_budget;
        if (budget_bytes) {
            std::vector<Candidate> given_cs = all;
            CostFn given_cost = make_cost_fn(an, given_cs);
            SelectionOptions given;
            given.max_bytes = budget_bytes;
            given.max_indexes = budget_limits.max_indexes.value_or(kDefaultMaxIndexes);
            Selection oursg = select_greedy(an.descs, given_cs, an.tables, given_cost, given);
            for (size_t c : oursg.chosen)
                budget_definitions.emplace_back(
                    index_definition(given_cs[c], an.tables.at(given_cs[c].table),
                                     pg::quote_identifier),
                    given_cs[c].size.bytes());
            within_budget = {
                {"ours_at_budget_cost_pct_of_no_index", cost_pct(oursg)},
                {"ours_at_budget_indexes", static_cast<double>(oursg.chosen.size())},
                {"ours_at_budget_estimated_bytes", bytes_of(given_cs, oursg)},
            };
        }
        run.rollback();
        std::vector<std::pair<std::string, double>> compared_to_extend = {
            {"ours_cost_pct_of_no_index", cost_pct(ours)},
            {"ours_indexes", static_cast<double>(ours.chosen.size())},
            {"ours_estimated_bytes", ours_bytes},
            {"ours_seconds", ours_s},
            {"extend_same_bytes_cost_pct_of_no_index", cost_pct(ext)},
            {"extend_same_bytes_indexes", static_cast<double>(ext.chosen.size())},
            {"extend_same_bytes_estimated_bytes", bytes_of(ext_cs, ext)},
            {"extend_same_bytes_seconds", ext_s},
            {"extend_unbounded_cost_pct_of_no_index", cost_pct(extu)},
            {"extend_unbounded_indexes", static_cast<double>(extu.chosen.size())},
            {"extend_unbounded_estimated_bytes", extu_bytes},
            {"ours_at_extend_bytes_cost_pct_of_no_index", cost_pct(oursb)},
            {"ours_at_extend_bytes_indexes", static_cast<double>(oursb.chosen.size())},
            {"ours_at_extend_bytes_estimated_bytes", bytes_of(oursb_cs, oursb)},
        };

        double g = greedy.workload_before - greedy.workload_after;
        double e = best.workload_before - best.workload_after;
        std::set<TableId> tables;
        for (const auto &[t, info] : an.tables) tables.insert(t);
        figures = {
            {"statements", static_cast<double>(an.statements)},
            {"statements_with_tables", static_cast<double>(an.descs.size())},
            {"statements_not_analysed", static_cast<double>(an.not_analysed)},
            {"tables", static_cast<double>(tables.size())},
            {"candidates", static_cast<double>(all.size())},
            {"candidates_compared", static_cast<double>(compared.size())},
            {"greedy_indexes", static_cast<double>(greedy.chosen.size())},
            {"greedy_reduction_pct",
             greedy.workload_before > 0 ? 100 * g / greedy.workload_before : 0},
            {"exhaustive_indexes", static_cast<double>(best.chosen.size())},
            {"exhaustive_reduction_pct",
             best.workload_before > 0 ? 100 * e / best.workload_before : 0},
            {"greedy_share_of_exhaustive_pct", e > 0 ? 100 * g / e : 100},
            {"greedy_seconds", greedy_s},
            {"greedy_whatif_plans", static_cast<double>(greedy_plans)},
        };
        figures.insert(figures.end(), compared_to_extend.begin(), compared_to_extend.end());
        figures.insert(figures.end(), within_budget.begin(), within_budget.end());
    }
    for (const auto &[d, bytes] : extend_definitions)
        pg::report(NOTICE, fmt::format("index advisor benchmark: Extend at the same bytes: {} "
                                       "(estimated {} bytes)",
                                       d, bytes));
    for (const auto &[d, bytes] : budget_definitions)
        pg::report(NOTICE, fmt::format("index advisor benchmark: ours within max_index_bytes: {} "
                                       "(estimated {} bytes)",
                                       d, bytes));
    PlanCounters at_end = plan_counters();
    uint64_t plans = at_end.plans - at_start.plans;
    figures.push_back({"whatif_plans", static_cast<double>(plans)});
    figures.push_back({"ms_per_whatif_plan",
                       plans ? (at_end.nanoseconds - at_start.nanoseconds) / 1e6 / plans : 0});
    figures.push_back(
        {"seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});

    pg::pg_call([fcinfo] { InitMaterializedSRF(fcinfo, 0); });
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    for (const auto &[name, value] : figures) {
        Datum values[2] = {pg::text_datum(name), Float8GetDatum(value)};
        bool nulls[2] = {false, false};
        pg::pg_call(
            [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
    return (Datum)0;
}
