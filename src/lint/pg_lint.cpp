// virtuoso.lint_migration(migration_sql text, trace boolean DEFAULT false)
//
// The server side of the linter: PostgreSQL's own parser (raw_parser) splits and parses the
// migration; each raw parse tree becomes a neutral lint::Statement with facts only the
// server knows: the lock PostgreSQL will take (AlterTableGetLockLevel for ALTER TABLE), the
// relation's live size and row estimate, whether a default is volatile after constant
// folding, whether a type change is binary coercible (the same test PostgreSQL applies
// before deciding to rewrite), whether a validated CHECK proves a column NOT NULL (predicate
// proof, as PostgreSQL does), which indexes exist for a foreign key, and who holds or waits
// for a lock on the relation now.  The rules themselves are pure C++ (lint/lint.hpp).
//
// Nothing here takes a lock that could wait on a user relation: names resolve with NoLock,
// sizes are read only under a conditional ACCESS SHARE lock (else from pg_class).  Each
// statement is described inside its own subtransaction, so that a PostgreSQL error while
// describing it (an unknown type, a default that fails to fold) becomes an info finding.
//
// trace => true runs the statements, as the caller, in a subtransaction that is always rolled
// back, under the extension's short lock_timeout, and records per statement the relation
// locks this backend newly holds, the relations whose relfilenode changed (rewrites) and the
// time taken.
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "db_virtuoso/lint/pg_lint.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/result.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "commands/defrem.h"
#include "commands/tablecmds.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/catcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

namespace virtuoso::lint {
namespace {

using pg::PgError;
using pg::UserError;

LockMode to_lock(LOCKMODE m) {
    return static_cast<LockMode>(static_cast<int>(m));
}

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// ---- catalog facts ---------------------------------------------------------------------

struct Lockers {
    std::unordered_map<Oid, std::vector<LockHolder>> by_relation;
    OldestTransaction oldest;
};

// One query for the whole call: relation locks of other sessions in this database, and the
// oldest open transaction of another client session.
Lockers read_lockers() {
    Lockers out;
    pg::InternalSql sql;
    auto r = sql.execute(
        "SELECT l.relation::text, l.pid::text, l.mode, l.granted::text, "
        "       extract(epoch FROM statement_timestamp() - a.xact_start)::float8::text, a.state "
        "FROM pg_catalog.pg_locks l "
        "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid "
        "WHERE l.locktype OPERATOR(pg_catalog.=) 'relation' "
        "  AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d "
        "       WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) "
        "  AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
        {}, true);
    for (const auto &row : r.rows) {
        if (!row[0] || !row[1] || !row[2]) continue;
        LockHolder h;
        h.pid = std::stoi(*row[1]);
        h.mode = lock_mode_from_pg(*row[2]).value_or(LockMode::None);
        h.granted = row[3] && *row[3] == "true";
        h.xact_seconds = row[4] ? std::stod(*row[4]) : -1;
        h.state = row[5].value_or("");
        out.by_relation[static_cast<Oid>(std::stoul(*row[0]))].push_back(h);
    }
    auto o = sql.execute(
        "SELECT a.pid::text, extract(epoch FROM statement_timestamp() - "
        "a.xact_start)::float8::text, "
        "       a.state "
        "FROM pg_catalog.pg_stat_activity a "
        "WHERE a.xact_start IS NOT NULL AND a.pid OPERATOR(pg_catalog.<>) "
        "pg_catalog.pg_backend_pid() "
        "  AND a.backend_type OPERATOR(pg_catalog.=) 'client backend' "
        "ORDER BY a.xact_start LIMIT 1",
        {}, true);
    if (!o.empty() && o.rows[0][0] && o.rows[0][1]) {
        out.oldest.pid = std::stoi(*o.rows[0][0]);
        out.oldest.seconds = std::stod(*o.rows[0][1]);
        out.oldest.state = o.rows[0][2].value_or("");
    }
    return out;
}

// Plain-C part of a relation's facts (no C++ objects alive while PostgreSQL may ereport).
struct RawFacts {
    bool exists;
    bool visible;
    char relkind;
    double blocks;     // heap blocks now (all partitions), -1 unknown
    double relpages;   // pg_class (sum over partitions)
    double reltuples;  // pg_class (sum), -1 never analysed
};

// Blocks of one relation now, read under a conditional ACCESS SHARE lock (never waits), or
// from pg_class when the lock is not free at once.
void relation_blocks(Oid relid, RawFacts *f) {
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) return;
    auto *form = (Form_pg_class)GETSTRUCT(tup);
    char kind = form->relkind;
    double relpages = form->relpages, reltuples = form->reltuples;
    ReleaseSysCache(tup);
    if (!RELKIND_HAS_STORAGE(kind)) return;
    double blocks = -1;
    if (ConditionalLockRelationOid(relid, AccessShareLock)) {
        Relation rel = try_relation_open(relid, NoLock);
        if (rel) {
            blocks = RelationGetNumberOfBlocks(rel);
            relation_close(rel, NoLock);
        }
        UnlockRelationOid(relid, AccessShareLock);
    }
    f->relpages += relpages;
    if (reltuples < 0 || f->reltuples < 0)
        f->reltuples = -1;
    else
        f->reltuples += (relpages > 0 && blocks >= 0)   ? reltuples / relpages * blocks
                        : (blocks == 0)                 ? 0
                        : (relpages == 0 && blocks > 0) ? -1e300
                                                        : reltuples;
    if (blocks < 0) blocks = relpages;
    if (f->blocks >= 0) f->blocks += blocks;
}

void raw_facts(Oid relid, RawFacts *f) {
    *f = RawFacts{false, false, 'r', 0, 0, 0};
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) return;
    auto *form = (Form_pg_class)GETSTRUCT(tup);
    f->exists = true;
    f->relkind = form->relkind;
    Oid owner = form->relowner;
    ReleaseSysCache(tup);
    Oid user = GetUserId();
    f->visible = has_privs_of_role(user, ROLE_PG_READ_ALL_STATS) ||
                 has_privs_of_role(user, owner) ||
                 pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK ||
                 pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ANY) == ACLCHECK_OK;
    if (f->relkind == RELKIND_PARTITIONED_TABLE) {
        List *all = find_all_inheritors(relid, NoLock, nullptr);
        ListCell *lc;
        foreach (lc, all) {
            Oid part = lfirst_oid(lc);
            if (get_rel_relkind(part) == RELKIND_RELATION) relation_blocks(part, f);
        }
    } else {
        relation_blocks(relid, f);
    }
}

class Catalog {
  public:
    explicit Catalog(const Lockers *lockers) : lockers_(lockers) {}

    // The relation a RangeVar names now, without taking a lock.
    Oid resolve(RangeVar *rv) {
        if (!rv) return InvalidOid;
        return pg::pg_call([rv] {
            return RangeVarGetRelidExtended(rv, NoLock, RVR_MISSING_OK, nullptr, nullptr);
        });
    }

    // Display name: schema-qualified as PostgreSQL quotes it; for a relation that does not
    // exist yet, in the schema CREATE would use.
    std::string name(RangeVar *rv, Oid relid) {
        if (OidIsValid(relid)) return pg::qualified_relation_name(relid);
        return pg::pg_call([rv] {
            const char *schema = rv->schemaname;
            if (!schema) {
                if (rv->relpersistence == RELPERSISTENCE_TEMP) {
                    schema = "pg_temp";
                } else {
                    List *path = fetch_search_path(false);
                    schema = path ? get_namespace_name(linitial_oid(path)) : nullptr;
                }
            }
            return std::string(schema ? quote_qualified_identifier(schema, rv->relname)
                                      : quote_identifier(rv->relname));
        });
    }

    RelationFacts facts(Oid relid, const std::string &display) {
        RelationFacts out;
        out.name = display;
        if (!OidIsValid(relid)) return out;
        auto it = cache_.find(relid);
        if (it == cache_.end()) {
            RawFacts raw;
            pg::pg_call([&raw, relid] { raw_facts(relid, &raw); });
            RelationFacts f;
            f.exists = raw.exists;
            f.visible = raw.visible;
            f.relkind = raw.relkind;
            f.size_bytes = raw.blocks >= 0 ? static_cast<int64_t>(raw.blocks) * BLCKSZ : -1;
            f.rows = raw.reltuples < 0 ? -1 : raw.reltuples;
            if (lockers_) {
                auto l = lockers_->by_relation.find(relid);
                if (l != lockers_->by_relation.end()) f.lockers = l->second;
            }
            it = cache_.emplace(relid, std::move(f)).first;
        }
        out = it->second;
        out.name = display;
        return out;
    }

  private:
    const Lockers *lockers_;
    std::unordered_map<Oid, RelationFacts> cache_;
};

// ---- expressions: what PostgreSQL itself decides ---------------------------------------

// Constant folding runs the immutable functions an expression calls.  It happens inside a
// subtransaction that is always rolled back, and as a security-restricted operation (as
// PostgreSQL does for code it runs on a user's behalf, e.g. ANALYZE): the functions cannot
// change the role or session state.  The rollback restores the user id and context.
void restrict_security() {
    Oid user;
    int context;
    GetUserIdAndSecContext(&user, &context);
    SetUserIdAndSecContext(user, context | SECURITY_RESTRICTED_OPERATION);
}

// The type of a TypeName as PostgreSQL prints it ("integer", "character varying(20)"), or
// the name as written when it does not exist (yet).  serial types are reported as written.
std::string type_string(TypeName *tn, Oid *typid, int32 *typmod) {
    *typid = InvalidOid;
    *typmod = -1;
    if (!tn) return "";
    if (list_length(tn->names) == 1 && !tn->pct_type) {
        std::string n = lower(strVal(linitial(tn->names)));
        if (n == "serial" || n == "serial4") return "serial";
        if (n == "bigserial" || n == "serial8") return "bigserial";
        if (n == "smallserial" || n == "serial2") return "smallserial";
    }
    return pg::pg_call([tn, typid, typmod] {
        Type t = LookupTypeName(nullptr, tn, typmod, true);
        if (!t) return std::string(TypeNameToString(tn));
        *typid = typeTypeId(t);
        ReleaseSysCache(t);
        char *s = format_type_with_typemod(*typid, *typmod);
        if (tn->arrayBounds != NIL && !type_is_array(*typid)) {
            // LookupTypeName returns the element type for "x[]": PostgreSQL resolves arrays later.
            return std::string(s) + "[]";
        }
        return std::string(s);
    });
}

// Whether a column default is volatile after constant folding (ADD COLUMN then rewrites):
// transformed, coerced to the column type and planned exactly as PostgreSQL does before
// it decides between a stored "missing" value and a rewrite.
bool default_is_volatile(Node *raw, Oid typid, int32 typmod) {
    return pg::pg_call([raw, typid, typmod] {
        ParseState *ps = make_parsestate(nullptr);
        Node *expr =
            transformExpr(ps, static_cast<Node *>(copyObjectImpl(raw)), EXPR_KIND_COLUMN_DEFAULT);
        if (OidIsValid(typid)) {
            Node *coerced = coerce_to_target_type(ps, expr, exprType(expr), typid, typmod,
                                                  COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
            if (coerced) expr = coerced;
        }
        free_parsestate(ps);
        Expr *planned = expression_planner((Expr *)expr);
        return contain_volatile_functions((Node *)planned);
    });
}

// PostgreSQL's test (ATColumnChangeRequiresRewrite): after planning, the new value must be
// the old column, possibly relabelled (binary-coercible cast, or a length coercion the
// type's support function removed), through domains without constraints.
bool change_requires_rewrite(Node *expr, AttrNumber attnum, std::string *why) {
    for (;;) {
        if (IsA(expr, Var) && ((Var *)expr)->varattno == attnum) return false;
        if (IsA(expr, RelabelType)) {
            expr = (Node *)((RelabelType *)expr)->arg;
        } else if (IsA(expr, CoerceToDomain)) {
            auto *d = (CoerceToDomain *)expr;
            if (DomainHasConstraints(d->resulttype)) {
                *why = "the new domain type has constraints to check on every row";
                return true;
            }
            expr = (Node *)d->arg;
        } else if (IsA(expr, FuncExpr) &&
                   (((FuncExpr *)expr)->funcid == F_TIMESTAMPTZ_TIMESTAMP ||
                    ((FuncExpr *)expr)->funcid == F_TIMESTAMP_TIMESTAMPTZ) &&
                   !TimestampTimestampTzRequiresRewrite()) {
            expr = (Node *)linitial(((FuncExpr *)expr)->args);
        } else {
            if (IsA(expr, FuncExpr) && list_length(((FuncExpr *)expr)->args) >= 2)
                *why =
                    "the new length or precision is not wider than the old, so every value "
                    "is checked or converted";
            else
                *why = IsA(expr, FuncExpr) || IsA(expr, CoerceViaIO) || IsA(expr, ArrayCoerceExpr)
                           ? "the cast is not binary coercible (pg_cast), every value is converted"
                           : "every value is recomputed";
            return true;
        }
    }
}

struct TypeChange {
    bool known = false;
    bool rewrites = false;
    std::string why;
};

TypeChange type_change(Oid relid, const char *column, Oid newtype, int32 newtypmod,
                       bool has_using) {
    TypeChange out;
    if (!OidIsValid(relid)) {
        out.why = "the table does not exist now";
        return out;
    }
    if (!OidIsValid(newtype)) {
        out.why = "the new type does not exist now";
        return out;
    }
    if (has_using) {
        out.known = true;
        out.rewrites = true;
        out.why = "a USING expression is evaluated for every row";
        return out;
    }
    struct {
        bool found, rewrites, nocast;
        char why[200];
    } r{false, false, false, {0}};
    pg::pg_call([&r, relid, column, newtype, newtypmod] {
        HeapTuple tup = SearchSysCacheAttName(relid, column);
        if (!HeapTupleIsValid(tup)) return;
        auto *att = (Form_pg_attribute)GETSTRUCT(tup);
        Var *var = makeVar(1, att->attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
        ReleaseSysCache(tup);
        r.found = true;
        Node *expr = coerce_to_target_type(nullptr, (Node *)var, var->vartype, newtype, newtypmod,
                                           COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
        if (!expr) {
            r.nocast = true;
            return;
        }
        expr = (Node *)expression_planner((Expr *)expr);
        std::string why;  // no ereport below: the loop reads nodes and the type cache only
        r.rewrites = change_requires_rewrite(expr, var->varattno, &why);
        strlcpy(r.why, why.c_str(), sizeof(r.why));
    });
    if (!r.found) {
        out.why = fmt::format("column {} does not exist now", column);
    } else if (r.nocast) {
        out.why = "there is no assignment cast: the statement would fail without USING";
    } else {
        out.known = true;
        out.rewrites = r.rewrites;
        out.why = r.rewrites ? r.why : "binary coercible per pg_cast and the type's length rules";
    }
    return out;
}

// Whether column `column` of relid is NOT NULL already, or proven so by validated CHECK
// constraints (predicate proof over them, as PostgreSQL does before skipping the scan).
void not_null_facts(Oid relid, const char *column, bool *already, bool *implied) {
    *already = *implied = false;
    if (!OidIsValid(relid)) return;
    pg::pg_call([relid, column, already, implied] {
        HeapTuple tup = SearchSysCacheAttName(relid, column);
        if (!HeapTupleIsValid(tup)) return;
        auto *att = (Form_pg_attribute)GETSTRUCT(tup);
        *already = att->attnotnull;
        Var *var = makeVar(1, att->attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
        ReleaseSysCache(tup);
        NullTest *nt = makeNode(NullTest);
        nt->arg = (Expr *)var;
        nt->nulltesttype = IS_NOT_NULL;
        nt->argisrow = false;
        nt->location = -1;
        List *known = NIL;
        Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                    ObjectIdGetDatum(relid));
        SysScanDesc scan =
            systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, nullptr, 1, &key);
        HeapTuple ct;
        while (HeapTupleIsValid(ct = systable_getnext(scan))) {
            auto *con = (Form_pg_constraint)GETSTRUCT(ct);
            if (con->contype != CONSTRAINT_CHECK || !con->convalidated) continue;
            bool isnull;
            Datum bin =
                heap_getattr(ct, Anum_pg_constraint_conbin, RelationGetDescr(conrel), &isnull);
            if (isnull) continue;
            Node *cexpr = (Node *)stringToNode(TextDatumGetCString(bin));
            cexpr = eval_const_expressions(nullptr, cexpr);
            cexpr = (Node *)canonicalize_qual((Expr *)cexpr, true);
            known = list_concat(known, make_ands_implicit((Expr *)cexpr));
        }
        systable_endscan(scan);
        table_close(conrel, AccessShareLock);
        *implied = known != NIL && predicate_implied_by(list_make1(nt), known, false);
    });
}

// Whether a valid, non-partial index of relid has the columns as its leading key columns
// (in any order).
bool fk_index_exists(Oid relid, const std::vector<std::string> &columns) {
    if (!OidIsValid(relid) || columns.empty()) return false;
    std::string names = "{";
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i) names += ",";
        names += "\"";
        for (char c : columns[i]) {
            if (c == '"' || c == '\\') names += '\\';
            names += c;
        }
        names += "\"";
    }
    names += "}";
    pg::InternalSql sql;
    auto v = sql.scalar(
        "WITH want AS (SELECT a.attnum FROM pg_catalog.unnest($2::text[]) c(name) "
        "  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1::oid "
        "   AND a.attname OPERATOR(pg_catalog.=) c.name) "
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
        "  WHERE i.indrelid OPERATOR(pg_catalog.=) $1::oid AND i.indisvalid "
        "    AND i.indpred IS NULL "
        "    AND (SELECT pg_catalog.array_agg(k ORDER BY k) FROM pg_catalog.unnest("
        "           (i.indkey::int2[])[0:pg_catalog.cardinality($2::text[]) - 1]) k) "
        "        OPERATOR(pg_catalog.=) (SELECT pg_catalog.array_agg(attnum::int2 ORDER BY attnum) "
        "FROM want) "
        "    AND (SELECT pg_catalog.count(*) FROM want) OPERATOR(pg_catalog.=) "
        "        pg_catalog.cardinality($2::text[]))::text",
        {std::to_string(relid), names}, true);
    return v && *v == "true";
}

// ---- raw parse trees -> Statement ------------------------------------------------------

std::vector<std::string> string_list(List *l) {
    std::vector<std::string> out;
    ListCell *lc;
    foreach (lc, l) out.emplace_back(strVal(lfirst(lc)));
    return out;
}

bool walk_functions(Node *node, void *context);

// Names of the functions a statement calls that are not PostgreSQL's own (pg_catalog).
struct FunctionScan {
    std::vector<std::string> *found;
};

bool is_builtin_function(List *funcname) {
    if (list_length(funcname) == 2 && strcmp(strVal(linitial(funcname)), "pg_catalog") == 0)
        return true;
    if (list_length(funcname) != 1) return false;
    const char *name = strVal(llast(funcname));
    bool builtin = false;
    CatCList *list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
    for (int i = 0; i < list->n_members; ++i) {
        auto *proc = (Form_pg_proc)GETSTRUCT(&list->members[i]->tuple);
        if (proc->pronamespace == PG_CATALOG_NAMESPACE) builtin = true;
    }
    ReleaseSysCacheList(list);
    return builtin;
}

bool walk_functions(Node *node, void *context) {
    if (!node) return false;
    if (IsA(node, FuncCall)) {
        auto *fc = (FuncCall *)node;
        if (!is_builtin_function(fc->funcname)) {
            auto *scan = static_cast<FunctionScan *>(context);
            scan->found->push_back(NameListToString(fc->funcname));
        }
    }
    return raw_expression_tree_walker(
        node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walk_functions)), context);
}

std::vector<std::string> user_functions(Node *stmt) {
    std::vector<std::string> found;
    FunctionScan scan{&found};
    pg::pg_call([stmt, &scan] { (void)walk_functions(stmt, &scan); });
    return found;
}

// A DefElem list option (VACUUM (FULL), REINDEX (CONCURRENTLY)).
bool has_option(List *options, const char *name) {
    ListCell *lc;
    foreach (lc, options) {
        auto *opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, name) == 0)
            return pg::pg_call([opt] { return defGetBoolean(opt); });
    }
    return false;
}

// The column a CHECK constraint's raw expression proves NOT NULL ("col IS NOT NULL").
std::string check_not_null_column(Node *raw) {
    if (!raw || !IsA(raw, NullTest)) return "";
    auto *nt = (NullTest *)raw;
    if (nt->nulltesttype != IS_NOT_NULL || !nt->arg || !IsA(nt->arg, ColumnRef)) return "";
    List *fields = ((ColumnRef *)nt->arg)->fields;
    if (list_length(fields) != 1 || !IsA(linitial(fields), String)) return "";
    return strVal(linitial(fields));
}

// A qualified name list as a RangeVar ("improper relation name" is an ERROR).
RangeVar *range_var(List *names) {
    return pg::pg_call([names] { return makeRangeVarFromNameList(names); });
}

class Describer {
  public:
    Describer(Catalog &catalog) : catalog_(catalog) {}

    Statement describe(Node *node, int no, int line);

    // Relations of each statement (to re-resolve when tracing).
    std::vector<RangeVar *> relations;

  private:
    void set_object(Statement &s, RangeVar *rv) {
        if (!rv) return;
        relations.push_back(rv);
        Oid relid = catalog_.resolve(rv);
        s.object = catalog_.name(rv, relid);
        s.facts = catalog_.facts(relid, s.object);
        object_oid_ = relid;
    }
    void add_other(Statement &s, RangeVar *rv, LockMode lock) {
        if (!rv) return;
        relations.push_back(rv);
        Oid relid = catalog_.resolve(rv);
        std::string name = catalog_.name(rv, relid);
        s.other_locks.push_back({name, lock, catalog_.facts(relid, name)});
    }
    void alter_table(Statement &s, AlterTableStmt *stmt);
    Action add_constraint(Statement &s, Constraint *c, const std::string &column, bool in_alter);
    void add_column(Statement &s, Action &a, ColumnDef *def);
    void create_table(Statement &s, CreateStmt *stmt);

    Catalog &catalog_;
    Oid object_oid_ = InvalidOid;
};

Action Describer::add_constraint(Statement &s, Constraint *c, const std::string &column,
                                 bool in_alter) {
    Action a;
    a.kind = ActionKind::AddConstraint;
    a.constraint_name = c->conname ? c->conname : "";
    a.not_valid = c->skip_validation;
    switch (c->contype) {
        case CONSTR_CHECK:
            a.constraint = ConstraintKind::Check;
            a.check_not_null_column = check_not_null_column(c->raw_expr);
            a.scans = !c->skip_validation;
            if (a.scans) a.scan_reason = "every row is checked";
            break;
        case CONSTR_FOREIGN: {
            a.constraint = ConstraintKind::ForeignKey;
            a.fk_columns =
                c->fk_attrs ? string_list(c->fk_attrs) : std::vector<std::string>{column};
            a.scans = !c->skip_validation;
            if (a.scans) a.scan_reason = "every row is looked up in the referenced table";
            // The referenced table: SHARE ROW EXCLUSIVE (PostgreSQL's lock for both sides).
            size_t before = s.other_locks.size();
            add_other(s, c->pktable, LockMode::ShareRowExclusive);
            if (s.other_locks.size() > before) a.referenced = s.other_locks.back().object;
            a.fk_has_index = in_alter ? fk_index_exists(object_oid_, a.fk_columns) : false;
            break;
        }
        case CONSTR_PRIMARY:
            a.constraint = ConstraintKind::PrimaryKey;
            a.using_index = c->indexname != nullptr;
            break;
        case CONSTR_UNIQUE:
            a.constraint = ConstraintKind::Unique;
            a.using_index = c->indexname != nullptr;
            break;
        case CONSTR_EXCLUSION:
            a.constraint = ConstraintKind::Exclusion;
            break;
        case CONSTR_NOTNULL:
            a.constraint = ConstraintKind::NotNull;
            break;
        default:
            break;
    }
    if (a.constraint_name.empty()) a.constraint_name = "(unnamed)";
    return a;
}

void Describer::add_column(Statement &s, Action &a, ColumnDef *def) {
    a.kind = ActionKind::AddColumn;
    a.column = def->colname ? def->colname : "";
    Oid typid;
    int32 typmod;
    a.type_name = type_string(def->typeName, &typid, &typmod);
    a.serial =
        a.type_name == "serial" || a.type_name == "bigserial" || a.type_name == "smallserial";
    Node *raw_default = def->raw_default;
    ListCell *lc;
    foreach (lc, def->constraints) {
        auto *c = lfirst_node(Constraint, lc);
        switch (c->contype) {
            case CONSTR_NOTNULL:
                a.not_null = true;
                break;
            case CONSTR_DEFAULT:
                raw_default = c->raw_expr;
                break;
            case CONSTR_IDENTITY:
                a.identity = true;
                break;
            case CONSTR_GENERATED:
                a.generated_stored = true;
                break;
            case CONSTR_PRIMARY:
                a.not_null = true;
                [[fallthrough]];
            case CONSTR_UNIQUE:
            case CONSTR_CHECK:
            case CONSTR_FOREIGN: {
                Action extra = add_constraint(s, c, a.column, true);
                extra.lock = a.lock;
                s.actions.push_back(extra);
                if (c->contype == CONSTR_FOREIGN) {
                    a.constraint = ConstraintKind::ForeignKey;
                    a.fk_columns = extra.fk_columns;
                    a.referenced = extra.referenced;
                }
                break;
            }
            default:
                break;
        }
    }
    a.has_default = raw_default != nullptr;
    if (a.serial) {
        a.rewrites = true;
        a.rewrite_reason = "a serial column fills every existing row from its sequence";
    } else if (a.identity) {
        a.rewrites = true;
        a.rewrite_reason = "an identity column fills every existing row from its sequence";
    } else if (a.generated_stored) {
        a.rewrites = true;
        a.rewrite_reason = "a stored generated column is computed for every existing row";
    } else if (raw_default) {
        try {
            pg::SubTransaction sub;  // folding may run functions that fail
            restrict_security();
            a.volatile_default = default_is_volatile(raw_default, typid, typmod);
            sub.rollback();
            if (a.volatile_default) {
                a.rewrites = true;
                a.rewrite_reason =
                    "its default is volatile after constant folding, so every "
                    "existing row gets its own value";
            }
        } catch (const PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) throw;  // a cancel is not the default's
            a.unknown = true;
            a.rewrite_reason = fmt::format("its default cannot be evaluated here ({})", e.what());
        }
    }
    if (!a.rewrites && OidIsValid(typid)) {
        bool domain = pg::pg_call([typid] { return DomainHasConstraints(typid); });
        if (domain) {
            a.rewrites = true;
            a.rewrite_reason = "its domain type has constraints, checked on every existing row";
        }
    }
}

void Describer::alter_table(Statement &s, AlterTableStmt *stmt) {
    s.kind = Kind::AlterTable;
    set_object(s, stmt->relation);
    List *cmds = stmt->cmds;
    s.lock = to_lock(pg::pg_call([cmds] { return AlterTableGetLockLevel(cmds); }));
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        auto *cmd = lfirst_node(AlterTableCmd, lc);
        Action a;
        a.lock = to_lock(pg::pg_call([cmd] { return AlterTableGetLockLevel(list_make1(cmd)); }));
        a.column = cmd->name ? cmd->name : "";
        switch (cmd->subtype) {
            case AT_AddColumn:
            case AT_AddColumnToView:
                add_column(s, a, castNode(ColumnDef, cmd->def));
                break;
            case AT_DropColumn:
                a.kind = ActionKind::DropColumn;
                break;
            case AT_AlterColumnType: {
                a.kind = ActionKind::AlterColumnType;
                auto *def = castNode(ColumnDef, cmd->def);
                Oid typid;
                int32 typmod;
                a.type_name = type_string(def->typeName, &typid, &typmod);
                TypeChange tc;
                try {
                    pg::SubTransaction sub;
                    restrict_security();
                    tc = type_change(object_oid_, cmd->name, typid, typmod,
                                     def->raw_default != nullptr);
                    sub.rollback();
                } catch (const PgError &e) {
                    if (pg::ends_the_call(e.sqlstate())) throw;
                    tc.why = e.what();
                }
                a.rewrites = tc.rewrites;
                a.unknown = !tc.known && OidIsValid(object_oid_);
                a.rewrite_reason = tc.why;
                break;
            }
            case AT_SetNotNull:
                a.kind = ActionKind::SetNotNull;
                not_null_facts(object_oid_, cmd->name, &a.already_not_null, &a.implied_by_check);
                a.scans = !a.already_not_null && !a.implied_by_check;
                break;
            case AT_DropNotNull:
                a.kind = ActionKind::DropNotNull;
                break;
            case AT_ColumnDefault:
                a.kind = cmd->def ? ActionKind::SetDefault : ActionKind::DropDefault;
                break;
            case AT_AddConstraint: {
                Action c = add_constraint(s, castNode(Constraint, cmd->def), "", true);
                c.lock = a.lock;
                a = c;
                break;
            }
            case AT_ValidateConstraint:
                a.kind = ActionKind::ValidateConstraint;
                break;
            case AT_DropConstraint:
                a.kind = ActionKind::DropConstraint;
                break;
            case AT_SetLogged:
                a.kind = ActionKind::SetLogged;
                a.rewrites = true;
                a.rewrite_reason = "persistence changes rewrite the table";
                break;
            case AT_SetUnLogged:
                a.kind = ActionKind::SetUnlogged;
                a.rewrites = true;
                a.rewrite_reason = "persistence changes rewrite the table";
                break;
            case AT_SetTableSpace:
                a.kind = ActionKind::SetTablespace;
                a.rewrites = true;
                a.rewrite_reason = "the files are copied to the new tablespace";
                break;
            case AT_AttachPartition: {
                a.kind = ActionKind::AttachPartition;
                auto *pc = castNode(PartitionCmd, cmd->def);
                add_other(s, pc->name, LockMode::AccessExclusive);
                if (!s.other_locks.empty()) a.partition = s.other_locks.back().object;
                break;
            }
            case AT_DetachPartition: {
                a.kind = ActionKind::DetachPartition;
                auto *pc = castNode(PartitionCmd, cmd->def);
                a.concurrently = pc->concurrent;
                add_other(
                    s, pc->name,
                    pc->concurrent ? LockMode::ShareUpdateExclusive : LockMode::AccessExclusive);
                if (!s.other_locks.empty()) a.partition = s.other_locks.back().object;
                break;
            }
            case AT_AddIdentity:
                a.kind = ActionKind::AddIdentity;
                break;
            case AT_SetStorage:
                a.kind = ActionKind::SetStorage;
                break;
            default:
                a.kind = ActionKind::Other;
                break;
        }
        s.actions.push_back(a);
    }
}

void Describer::create_table(Statement &s, CreateStmt *stmt) {
    s.kind = Kind::CreateTable;
    set_object(s, stmt->relation);
    std::set<std::string> key_columns;
    std::vector<std::vector<std::string>> unique_keys;
    ListCell *lc;
    foreach (lc, stmt->constraints) {
        auto *c = lfirst_node(Constraint, lc);
        if (c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE) {
            auto keys = string_list(c->keys);
            if (c->contype == CONSTR_PRIMARY) key_columns.insert(keys.begin(), keys.end());
            unique_keys.push_back(keys);
        }
    }
    foreach (lc, stmt->tableElts) {
        Node *elt = (Node *)lfirst(lc);
        if (IsA(elt, ColumnDef)) {
            auto *def = (ColumnDef *)elt;
            Oid typid;
            int32 typmod;
            std::string type = type_string(def->typeName, &typid, &typmod);
            bool key = key_columns.count(def->colname) > 0;
            ListCell *cc;
            foreach (cc, def->constraints) {
                auto *c = lfirst_node(Constraint, cc);
                if (c->contype == CONSTR_PRIMARY) key = true;
                if (c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE)
                    unique_keys.push_back({def->colname});
                if (c->contype == CONSTR_FOREIGN)
                    s.table_constraints.push_back(add_constraint(s, c, def->colname, false));
            }
            s.column_types.push_back({def->colname, type, key});
        } else if (IsA(elt, Constraint)) {
            auto *c = (Constraint *)elt;
            if (c->contype == CONSTR_FOREIGN)
                s.table_constraints.push_back(add_constraint(s, c, "", false));
        }
    }
    for (auto &a : s.table_constraints) {
        for (const auto &keys : unique_keys)
            if (keys.size() >= a.fk_columns.size() &&
                std::is_permutation(a.fk_columns.begin(), a.fk_columns.end(), keys.begin(),
                                    keys.begin() + a.fk_columns.size()))
                a.fk_has_index = true;
    }
    if (stmt->inhRelations != NIL) {
        auto *parent = (RangeVar *)linitial(stmt->inhRelations);
        // PARTITION OF: ACCESS EXCLUSIVE on the parent; INHERITS: SHARE UPDATE EXCLUSIVE.
        add_other(s, parent,
                  stmt->partbound ? LockMode::AccessExclusive : LockMode::ShareUpdateExclusive);
        if (!s.other_locks.empty()) s.parent = s.other_locks.back().object;
    }
    s.lock = LockMode::AccessExclusive;  // on the new table only
}

Statement Describer::describe(Node *node, int no, int line) {
    Statement s;
    s.no = no;
    s.line = line;
    object_oid_ = InvalidOid;
    s.tag = pg::pg_call([node] {
        return std::string(CreateCommandTag(node) == CMDTAG_UNKNOWN
                               ? "???"
                               : GetCommandTagName(CreateCommandTag(node)));
    });
    switch (nodeTag(node)) {
        case T_TransactionStmt: {
            auto *t = (TransactionStmt *)node;
            switch (t->kind) {
                case TRANS_STMT_BEGIN:
                case TRANS_STMT_START:
                    s.kind = Kind::TransactionBegin;
                    break;
                case TRANS_STMT_COMMIT:
                    s.kind = Kind::TransactionCommit;
                    break;
                case TRANS_STMT_ROLLBACK:
                    s.kind = Kind::TransactionRollback;
                    break;
                default:
                    s.kind = Kind::Savepoint;
                    break;
            }
            break;
        }
        case T_VariableSetStmt: {
            auto *v = (VariableSetStmt *)node;
            std::string name = v->name ? v->name : "";
            s.kind = name == "lock_timeout"        ? Kind::SetLockTimeout
                     : name == "statement_timeout" ? Kind::SetStatementTimeout
                                                   : Kind::SetOther;
            s.local = v->is_local;
            if (v->kind == VAR_SET_VALUE && v->args) {
                Node *arg = (Node *)linitial(v->args);
                if (IsA(arg, A_Const)) {
                    auto *c = (A_Const *)arg;
                    if (IsA(&c->val, Integer))
                        s.setting = std::to_string(intVal(&c->val));
                    else if (IsA(&c->val, String))
                        s.setting = strVal(&c->val);
                }
            } else {
                s.setting = "DEFAULT";
            }
            break;
        }
        case T_CreateStmt:
            create_table(s, (CreateStmt *)node);
            break;
        case T_AlterTableStmt: {
            auto *a = (AlterTableStmt *)node;
            if (a->objtype == OBJECT_TABLE || a->objtype == OBJECT_FOREIGN_TABLE) {
                alter_table(s, a);
            } else {
                s.kind = Kind::AlterOther;
                set_object(s, a->relation);
                List *cmds = a->cmds;
                s.lock = to_lock(pg::pg_call([cmds] { return AlterTableGetLockLevel(cmds); }));
            }
            break;
        }
        case T_IndexStmt: {
            auto *i = (IndexStmt *)node;
            s.kind = Kind::CreateIndex;
            set_object(s, i->relation);
            s.concurrently = i->concurrent;
            s.unique = i->unique;
            s.lock = i->concurrent ? LockMode::ShareUpdateExclusive : LockMode::Share;
            ListCell *lc;
            foreach (lc, i->indexParams) {
                auto *e = lfirst_node(IndexElem, lc);
                if (!e->name) break;
                s.columns.emplace_back(e->name);
            }
            break;
        }
        case T_DropStmt: {
            auto *d = (DropStmt *)node;
            s.cascade = d->behavior == DROP_CASCADE;
            s.concurrently = d->concurrent;
            List *first = d->objects ? (List *)linitial(d->objects) : NIL;
            if (d->removeType == OBJECT_INDEX && first) {
                s.kind = Kind::DropIndex;
                RangeVar *rv = range_var(first);
                relations.push_back(rv);
                Oid idx = catalog_.resolve(rv);
                Oid table = OidIsValid(idx)
                                ? pg::pg_call([idx] { return IndexGetRelation(idx, true); })
                                : InvalidOid;
                s.lock = d->concurrent ? LockMode::ShareUpdateExclusive : LockMode::AccessExclusive;
                if (OidIsValid(table)) {
                    s.object = pg::qualified_relation_name(table);
                    s.facts = catalog_.facts(table, s.object);
                    s.other_locks.push_back(
                        {pg::qualified_relation_name(idx), s.lock,
                         catalog_.facts(idx, pg::qualified_relation_name(idx))});
                } else {
                    s.object = catalog_.name(rv, idx);
                }
            } else if ((d->removeType == OBJECT_TABLE || d->removeType == OBJECT_MATVIEW) &&
                       first) {
                s.kind = d->removeType == OBJECT_TABLE ? Kind::DropTable : Kind::DropOther;
                set_object(s, range_var(first));
                s.lock = LockMode::AccessExclusive;
                for (int k = 1; k < list_length(d->objects); ++k)
                    add_other(s, range_var((List *)list_nth(d->objects, k)),
                              LockMode::AccessExclusive);
            } else if (d->removeType == OBJECT_SCHEMA) {
                s.kind = Kind::DropSchema;
                if (d->objects) s.object = strVal(linitial(d->objects));
            } else {
                s.kind = Kind::DropOther;
            }
            break;
        }
        case T_RenameStmt: {
            auto *r = (RenameStmt *)node;
            s.rename_to = r->newname ? r->newname : "";
            if (r->renameType == OBJECT_TABLE) {
                s.kind = Kind::RenameTable;
                set_object(s, r->relation);
                s.lock = LockMode::AccessExclusive;
            } else if (r->renameType == OBJECT_COLUMN && r->relationType == OBJECT_TABLE) {
                s.kind = Kind::RenameColumn;
                set_object(s, r->relation);
                s.lock = LockMode::AccessExclusive;
            } else {
                s.kind = Kind::RenameOther;
                if (r->relation) {
                    set_object(s, r->relation);
                    s.lock = r->renameType == OBJECT_INDEX ? LockMode::ShareUpdateExclusive
                                                           : LockMode::AccessExclusive;
                }
            }
            break;
        }
        case T_TruncateStmt: {
            auto *t = (TruncateStmt *)node;
            s.kind = Kind::Truncate;
            s.cascade = t->behavior == DROP_CASCADE;
            s.lock = LockMode::AccessExclusive;
            ListCell *lc;
            bool first = true;
            foreach (lc, t->relations) {
                if (first)
                    set_object(s, lfirst_node(RangeVar, lc));
                else
                    add_other(s, lfirst_node(RangeVar, lc), LockMode::AccessExclusive);
                first = false;
            }
            break;
        }
        case T_VacuumStmt: {
            auto *v = (VacuumStmt *)node;
            if (!v->is_vacuumcmd) {
                s.kind = Kind::Select;  // ANALYZE: SHARE UPDATE EXCLUSIVE, harmless
                s.lock = LockMode::ShareUpdateExclusive;
                break;
            }
            s.kind = Kind::Vacuum;
            s.full = has_option(v->options, "full");
            s.lock = s.full ? LockMode::AccessExclusive : LockMode::ShareUpdateExclusive;
            if (v->rels) set_object(s, lfirst_node(VacuumRelation, list_head(v->rels))->relation);
            break;
        }
        case T_ClusterStmt: {
            auto *c = (ClusterStmt *)node;
            s.kind = Kind::Cluster;
            s.lock = LockMode::AccessExclusive;
            set_object(s, c->relation);
            break;
        }
        case T_LockStmt: {
            auto *l = (LockStmt *)node;
            s.kind = Kind::LockTable;
            s.lock = static_cast<LockMode>(l->mode);
            ListCell *lc;
            bool first = true;
            foreach (lc, l->relations) {
                if (first)
                    set_object(s, lfirst_node(RangeVar, lc));
                else
                    add_other(s, lfirst_node(RangeVar, lc), s.lock);
                first = false;
            }
            break;
        }
        case T_UpdateStmt: {
            auto *u = (UpdateStmt *)node;
            s.kind = Kind::Update;
            set_object(s, u->relation);
            s.has_where = u->whereClause != nullptr;
            s.lock = LockMode::RowExclusive;
            break;
        }
        case T_DeleteStmt: {
            auto *d = (DeleteStmt *)node;
            s.kind = Kind::Delete;
            set_object(s, d->relation);
            s.has_where = d->whereClause != nullptr;
            s.lock = LockMode::RowExclusive;
            break;
        }
        case T_InsertStmt:
            s.kind = Kind::Insert;
            set_object(s, ((InsertStmt *)node)->relation);
            s.lock = LockMode::RowExclusive;
            break;
        case T_SelectStmt:
            s.kind = Kind::Select;
            break;
        case T_RefreshMatViewStmt: {
            auto *r = (RefreshMatViewStmt *)node;
            s.kind = Kind::RefreshMatView;
            s.concurrently = r->concurrent;
            set_object(s, r->relation);
            s.lock = r->concurrent ? LockMode::Exclusive : LockMode::AccessExclusive;
            break;
        }
        case T_ReindexStmt: {
            auto *r = (ReindexStmt *)node;
            s.kind = Kind::Reindex;
            s.concurrently = has_option(r->params, "concurrently");
            if (r->kind == REINDEX_OBJECT_INDEX && r->relation) {
                relations.push_back(r->relation);
                Oid idx = catalog_.resolve(r->relation);
                Oid table = OidIsValid(idx)
                                ? pg::pg_call([idx] { return IndexGetRelation(idx, true); })
                                : InvalidOid;
                // REINDEX INDEX: SHARE on the table, ACCESS EXCLUSIVE on the index.
                s.lock = s.concurrently ? LockMode::ShareUpdateExclusive : LockMode::Share;
                if (OidIsValid(table)) {
                    s.object = pg::qualified_relation_name(table);
                    s.facts = catalog_.facts(table, s.object);
                    std::string iname = pg::qualified_relation_name(idx);
                    s.other_locks.push_back({iname,
                                             s.concurrently ? LockMode::ShareUpdateExclusive
                                                            : LockMode::AccessExclusive,
                                             catalog_.facts(idx, iname)});
                } else {
                    s.object = catalog_.name(r->relation, idx);
                }
            } else if (r->kind == REINDEX_OBJECT_TABLE && r->relation) {
                set_object(s, r->relation);
                s.lock = s.concurrently ? LockMode::ShareUpdateExclusive : LockMode::Share;
            } else {
                // REINDEX SCHEMA/DATABASE/SYSTEM: every index it covers, table by table.
                s.lock = s.concurrently ? LockMode::ShareUpdateExclusive : LockMode::Share;
                s.reason = r->kind == REINDEX_OBJECT_SCHEMA
                               ? fmt::format("every index of schema {}", r->name ? r->name : "")
                               : std::string("every index of the database");
            }
            break;
        }
        case T_CreateTrigStmt:
            s.kind = Kind::CreateTrigger;
            set_object(s, ((CreateTrigStmt *)node)->relation);
            s.lock = LockMode::ShareRowExclusive;
            break;
        case T_DropdbStmt:
            s.kind = Kind::DropDatabase;
            s.object = ((DropdbStmt *)node)->dbname;
            break;
        case T_AlterEnumStmt:
            s.kind = ((AlterEnumStmt *)node)->oldVal ? Kind::AlterOther : Kind::AlterTypeAddValue;
            break;
        case T_AlterDomainStmt: {
            auto *d = (AlterDomainStmt *)node;
            s.object = NameListToString(d->typeName);
            if (d->subtype == 'C' && d->def && IsA(d->def, Constraint) &&
                !((Constraint *)d->def)->skip_validation)
                s.kind = Kind::AlterDomainAddConstraint;
            else
                s.kind = Kind::AlterOther;
            break;
        }
        case T_CreateDomainStmt: {
            auto *d = (CreateDomainStmt *)node;
            s.kind = Kind::CreateOther;
            ListCell *lc;
            foreach (lc, d->constraints)
                if (lfirst_node(Constraint, lc)->contype == CONSTR_CHECK)
                    s.kind = Kind::CreateDomainWithConstraint;
            s.object = NameListToString(d->domainname);
            break;
        }
        case T_DoStmt:
            s.kind = Kind::Unanalysable;
            s.reason = "a DO block runs procedural code, possibly dynamic SQL";
            break;
        case T_CallStmt:
            s.kind = Kind::Unanalysable;
            s.reason = "a procedure can run any SQL";
            break;
        case T_ExecuteStmt:
            s.kind = Kind::Unanalysable;
            s.reason = "EXECUTE runs a prepared statement defined elsewhere";
            break;
        case T_CopyStmt:
            s.kind = Kind::Copy;
            if (((CopyStmt *)node)->relation && ((CopyStmt *)node)->is_from) {
                set_object(s, ((CopyStmt *)node)->relation);
                s.lock = LockMode::RowExclusive;
            }
            break;
        case T_CommentStmt:
            s.kind = Kind::Comment;
            break;
        case T_GrantStmt:
        case T_GrantRoleStmt:
        case T_AlterDefaultPrivilegesStmt:
            s.kind = Kind::Grant;
            break;
        case T_CreateFunctionStmt:
        case T_ViewStmt:
        case T_CreateSeqStmt:
        case T_CreateSchemaStmt:
        case T_CreateExtensionStmt:
        case T_CompositeTypeStmt:
        case T_CreateEnumStmt:
        case T_CreateRangeStmt:
        case T_DefineStmt:
        case T_CreateTableAsStmt:
        case T_CreateRoleStmt:
        case T_CreatePolicyStmt:
        case T_CreateStatsStmt:
        case T_PrepareStmt:
        case T_DeallocateStmt:
        case T_CreateCastStmt:
        case T_CreateOpClassStmt:
        case T_RuleStmt:
        case T_CreateEventTrigStmt:
        case T_CreatePublicationStmt:
            s.kind = Kind::CreateOther;
            break;
        case T_AlterSeqStmt:
        case T_AlterFunctionStmt:
        case T_AlterOwnerStmt:
        case T_AlterObjectSchemaStmt:
        case T_AlterRoleStmt:
        case T_AlterExtensionStmt:
        case T_AlterStatsStmt:
        case T_AlterTableSpaceOptionsStmt:
        case T_AlterPolicyStmt:
            s.kind = Kind::AlterOther;
            break;
        case T_ExplainStmt: {
            // EXPLAIN ANALYZE runs its statement: it is that statement.
            auto *e = (ExplainStmt *)node;
            if (has_option(e->options, "analyze")) {
                Statement inner = describe(e->query, no, line);
                inner.tag = "EXPLAIN ANALYZE " + inner.tag;
                return inner;
            }
            s.kind = Kind::Comment;
            break;
        }
        case T_VariableShowStmt:
        case T_NotifyStmt:
        case T_ListenStmt:
        case T_UnlistenStmt:
        case T_CheckPointStmt:
        case T_DiscardStmt:
            s.kind = Kind::Select;
            break;
        default:
            s.kind = Kind::Unknown;
            s.reason = "no rule covers this kind of statement yet";
            break;
    }
    // Calls of functions that are not PostgreSQL's own may run any SQL (dynamic SQL).
    if (IsA(node, SelectStmt) || IsA(node, InsertStmt) || IsA(node, UpdateStmt) ||
        IsA(node, DeleteStmt)) {
        auto fns = user_functions(node);
        if (!fns.empty() && s.kind == Kind::Select) {
            s.kind = Kind::Unanalysable;
            s.reason = fmt::format("it calls {}, which may run any SQL (dynamic SQL)", fns.front());
        } else if (!fns.empty()) {
            s.user_functions = fns;
        }
    }
    return s;
}

// ---- trace -------------------------------------------------------------------------------

struct OwnLock {
    Oid relid;
    LockMode mode;
    bool operator<(const OwnLock &o) const {
        return relid != o.relid ? relid < o.relid : mode < o.mode;
    }
};

std::set<OwnLock> own_locks() {
    pg::InternalSql sql;
    auto r = sql.execute(
        "SELECT l.relation::text, l.mode FROM pg_catalog.pg_locks l "
        "WHERE l.locktype OPERATOR(pg_catalog.=) 'relation' "
        "  AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.granted "
        "  AND l.relation OPERATOR(pg_catalog.>=) 16384::oid",
        {}, true);
    std::set<OwnLock> out;
    for (const auto &row : r.rows) {
        if (!row[0] || !row[1]) continue;
        auto m = lock_mode_from_pg(*row[1]);
        if (m) out.insert({static_cast<Oid>(std::stoul(*row[0])), *m});
    }
    return out;
}

// relfilenodes of the relations (and, for partitioned tables, their partitions) a
// statement names, as they are now.
std::map<Oid, Oid> filenodes(const std::vector<Oid> &relids) {
    std::map<Oid, Oid> out;
    pg::pg_call([&out, &relids] {
        for (Oid relid : relids) {
            if (!OidIsValid(relid)) continue;
            List *all = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE
                            ? find_all_inheritors(relid, NoLock, nullptr)
                            : list_make1_oid(relid);
            ListCell *lc;
            foreach (lc, all) {
                Oid r = lfirst_oid(lc);
                HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(r));
                if (!HeapTupleIsValid(tup)) continue;
                Oid node = ((Form_pg_class)GETSTRUCT(tup))->relfilenode;
                ReleaseSysCache(tup);
                out.emplace(r, node);
            }
        }
    });
    return out;
}

// Name of a relation locked by a traced statement, or "" when it is gone again (the
// transient heap of a rewrite is locked, then dropped).
std::string traced_name(Oid relid) {
    return pg::pg_call([relid] {
        char *rel = get_rel_name(relid);
        if (!rel) return std::string();
        char *nsp = get_namespace_name(get_rel_namespace(relid));
        return std::string(quote_qualified_identifier(nsp, rel));
    });
}

void run_trace(std::vector<Statement> &statements, const std::vector<std::string> &texts,
               const std::vector<std::vector<RangeVar *>> &relations, Catalog &catalog) {
    if (XactReadOnly)
        throw UserError(ERRCODE_READ_ONLY_SQL_TRANSACTION,
                        "lint_migration with trace => true cannot run in a read-only transaction",
                        "The trace runs the migration (and rolls it back).",
                        "Run it in a read-write transaction, or use trace => false.");
    if (InSecurityRestrictedOperation())
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        "lint_migration with trace => true cannot run inside a "
                        "security-restricted operation");
    pg::SubTransaction outer;
    {
        pg::GucScope guc;
        guc.set("lock_timeout",
                std::to_string(gucs::lock_timeout_ms > 0 ? gucs::lock_timeout_ms : 1000));
        for (size_t i = 0; i < statements.size(); ++i) {
            Statement &s = statements[i];
            auto &t = s.trace;
            t.attempted = true;
            if (top_level_only(s)) {
                t.skipped =
                    "it cannot run inside a transaction block, so the trace does not run it";
                continue;
            }
            if (s.kind == Kind::TransactionBegin || s.kind == Kind::TransactionCommit ||
                s.kind == Kind::TransactionRollback || s.kind == Kind::Savepoint) {
                t.skipped = "transaction control is not run by the trace";
                continue;
            }
            std::vector<Oid> relids;
            for (RangeVar *rv : relations[i]) relids.push_back(catalog.resolve(rv));
            auto before_nodes = filenodes(relids);
            auto before_locks = own_locks();
            auto start = std::chrono::steady_clock::now();
            try {
                pg::SubTransaction sub;
                {
                    pg::Spi spi;
                    spi.execute(texts[i]);
                }
                sub.commit();
                t.ran = true;
            } catch (const PgError &e) {
                if (pg::ends_the_call(e.sqlstate())) throw;  // not the statement's own error
                t.error = e.what();
                t.sqlstate = unpack_sql_state(e.sqlstate());
            }
            t.milliseconds =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
            if (!t.ran) continue;
            for (const auto &l : own_locks()) {
                if (before_locks.count(l)) continue;
                std::string name = traced_name(l.relid);
                if (!name.empty()) t.locks.push_back({name, l.mode});
            }
            auto after_nodes = filenodes(relids);
            for (const auto &[relid, node] : before_nodes) {
                auto it = after_nodes.find(relid);
                if (it != after_nodes.end() && it->second != node)
                    t.rewritten.push_back(traced_name(relid));
            }
            // A partition rewritten also counts for the partitioned table named.
            for (Oid relid : relids) {
                if (!OidIsValid(relid)) continue;
                std::string name = traced_name(relid);
                bool listed =
                    std::find(t.rewritten.begin(), t.rewritten.end(), name) != t.rewritten.end();
                if (!listed && !t.rewritten.empty() && pg::pg_call([relid] {
                        return get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
                    }))
                    t.rewritten.push_back(name);
            }
        }
    }
    outer.rollback();
}

// Whether the migration means to run as psql runs it (statement by statement outside its
// own BEGIN/COMMIT): it has transaction control, or statements PostgreSQL refuses inside a
// transaction block.
bool runs_statement_by_statement(List *raw) {
    ListCell *lc;
    foreach (lc, raw) {
        Node *n = lfirst_node(RawStmt, lc)->stmt;
        switch (nodeTag(n)) {
            case T_TransactionStmt: {
                auto kind = ((TransactionStmt *)n)->kind;
                if (kind == TRANS_STMT_BEGIN || kind == TRANS_STMT_START ||
                    kind == TRANS_STMT_COMMIT)
                    return true;
                break;
            }
            case T_IndexStmt:
                if (((IndexStmt *)n)->concurrent) return true;
                break;
            case T_DropStmt:
                if (((DropStmt *)n)->concurrent) return true;
                break;
            case T_ReindexStmt: {
                auto *r = (ReindexStmt *)n;
                if (has_option(r->params, "concurrently") ||
                    (r->kind != REINDEX_OBJECT_TABLE && r->kind != REINDEX_OBJECT_INDEX))
                    return true;
                break;
            }
            case T_VacuumStmt:
                if (((VacuumStmt *)n)->is_vacuumcmd) return true;
                break;
            case T_ClusterStmt:
                if (!((ClusterStmt *)n)->relation) return true;
                break;
            case T_DropdbStmt:
            case T_CreatedbStmt:
                return true;
            case T_AlterTableStmt: {
                ListCell *c;
                foreach (c, ((AlterTableStmt *)n)->cmds) {
                    auto *cmd = lfirst_node(AlterTableCmd, c);
                    if (cmd->subtype == AT_DetachPartition &&
                        castNode(PartitionCmd, cmd->def)->concurrent)
                        return true;
                }
                break;
            }
            default:
                break;
        }
    }
    return false;
}

// Switches to a memory context for one statement and back.
class StatementMemory {
  public:
    StatementMemory() {
        context_ = pg::pg_call([] {
            return AllocSetContextCreate(CurrentMemoryContext, "lint_migration statement",
                                         ALLOCSET_DEFAULT_SIZES);
        });
    }
    ~StatementMemory() { MemoryContextDelete(context_); }
    MemoryContext context() const { return context_; }

  private:
    MemoryContext context_;
};

}  // namespace

// The in-process entry point (also for the migration gate): parses and describes the
// migration and applies the rules.  trace runs it in a rolled-back subtransaction.
std::vector<Finding> lint_sql(const char *sql, bool trace, const Options &options) {
    List *raw = pg::pg_call([sql] { return raw_parser(sql, RAW_PARSE_DEFAULT); });
    // (a syntax error propagates as PgError with cursorpos; the caller reports it)
    Options effective = options;
    if (!effective.transactional) effective.transactional = !runs_statement_by_statement(raw);
    Lockers lockers = read_lockers();
    Catalog catalog(&lockers);
    Describer describer(catalog);
    // Static analysis streams: one statement at a time, its memory freed after it, so a
    // migration of millions of statements needs no more than its parse trees.  The trace
    // keeps them all (it runs them after describing them).
    std::optional<Session> session;
    if (!trace) session.emplace(effective, lockers.oldest);
    std::optional<StatementMemory> memory;
    if (!trace) memory.emplace();
    std::vector<Statement> statements;
    std::vector<std::string> texts;
    std::vector<std::vector<RangeVar *>> relations;
    size_t total = strlen(sql);
    int no = 0, line = 1;
    size_t offset = 0;
    ListCell *lc;
    foreach (lc, raw) {
        auto *rs = lfirst_node(RawStmt, lc);
        ++no;
        size_t loc = static_cast<size_t>(rs->stmt_location);
        size_t len = rs->stmt_len > 0 ? static_cast<size_t>(rs->stmt_len) : total - loc;
        // The line where the statement starts (after the blanks before it).
        size_t first = loc;
        while (first < total && isspace(static_cast<unsigned char>(sql[first]))) ++first;
        for (; offset < first; ++offset)
            if (sql[offset] == '\n') ++line;
        describer.relations.clear();
        Statement s;
        MemoryContext caller = CurrentMemoryContext;
        if (memory) MemoryContextSwitchTo(memory->context());
        try {
            pg::SubTransaction sub;  // a PostgreSQL error while describing becomes a finding
            s = describer.describe(rs->stmt, no, line);
            sub.rollback();
        } catch (const PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) {
                MemoryContextSwitchTo(caller);
                throw;  // a cancel ends the lint, it is no statement's finding
            }
            s = Statement{};
            s.no = no;
            s.line = line;
            s.kind = Kind::Unknown;
            s.tag = "This statement";
            s.reason = fmt::format("describing it failed: {}", e.what());
        } catch (...) {
            MemoryContextSwitchTo(caller);
            throw;
        }
        MemoryContextSwitchTo(caller);
        {
            // The first 200 bytes of the statement, cut at a character boundary.
            int rest = first - loc < len ? static_cast<int>(len - (first - loc)) : 0;
            const char *start = sql + first;
            int clip = pg::pg_call([start, rest] { return pg_mbcliplen(start, rest, 200); });
            s.text.assign(start, clip);
        }
        if (session) {
            session->add(s);
            MemoryContextReset(memory->context());
        } else {
            statements.push_back(std::move(s));
            texts.emplace_back(sql + loc, len);
            relations.push_back(describer.relations);
        }
        CHECK_FOR_INTERRUPTS();
    }
    if (session) return session->finish();
    run_trace(statements, texts, relations, catalog);
    return lint(statements, effective, lockers.oldest);
}

}  // namespace virtuoso::lint

namespace {

using virtuoso::lint::Finding;
namespace pg = virtuoso::pg;

// A syntax error: the position is reported against the migration text (as PL/pgSQL does
// for its queries), with the line and column in the DETAIL.
void locate_syntax_error(ErrorData *e, const char *sql) {
    if (!e || e->cursorpos <= 0) return;
    int pos = e->cursorpos;  // 1-based, in characters
    int line = 1, column = 1, chars = 0;
    for (const char *p = sql; *p && chars < pos - 1; p += pg_mblen(p), ++chars) {
        if (*p == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    e->detail = psprintf("The error is at line %d, column %d of migration_sql (character %d).",
                         line, column, pos);
    if (strlen(sql) <= 1024 * 1024) {
        e->internalquery = pstrdup(sql);
        e->internalpos = pos;
    }
    e->cursorpos = 0;
}

}  // namespace

VIRTUOSO_FUNCTION(virtuoso_lint_migration) {
    if (PG_ARGISNULL(0))
        throw pg::UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "migration_sql must not be NULL", "",
                            "Pass the migration's SQL text; an empty string has no findings.");
    if (PG_NARGS() > 1 && PG_ARGISNULL(1))
        throw pg::UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "trace must not be NULL");
    bool trace = PG_NARGS() > 1 && PG_GETARG_BOOL(1);
    char *sql = pg::pg_call([fcinfo] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
    std::vector<Finding> findings;
    try {
        findings = virtuoso::lint::lint_sql(sql, trace, virtuoso::lint::Options{});
    } catch (const pg::PgError &e) {
        if (e.sqlstate() == ERRCODE_SYNTAX_ERROR) locate_syntax_error(e.data(), sql);
        throw;
    }
    std::vector<pg::Row> rows;
    rows.reserve(findings.size());
    for (const auto &f : findings) {
        pg::Row row;
        row.emplace_back(std::to_string(f.statement_no));
        row.emplace_back(f.rule);
        row.emplace_back(std::string(virtuoso::lint::severity_name(f.severity)));
        row.push_back(f.object.empty() ? pg::Value{} : pg::Value{f.object});
        row.push_back(f.lock == virtuoso::lint::LockMode::None
                          ? pg::Value{}
                          : pg::Value{std::string(virtuoso::lint::lock_mode_name(f.lock))});
        row.emplace_back(f.message);
        row.push_back(f.safe_alternative.empty() ? pg::Value{} : pg::Value{f.safe_alternative});
        row.emplace_back(virtuoso::lint::details_json(f, true));
        rows.push_back(std::move(row));
    }
    return pg::return_rows(fcinfo, rows);
}
