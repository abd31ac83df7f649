// What-if planning for the index advisor: a get_relation_info_hook that shows the planner
// hypothetical B-tree indexes, active only while plan_with() runs, and the walk over an
// analysed Query that describes what a statement does with its tables.
#include <chrono>
#include <map>

#include "db_virtuoso/advisor/pg_advisor.hpp"
#include "db_virtuoso/advisor/pg_whatif.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/amapi.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "utils/syscache.h"
}

namespace virtuoso::advisor {
namespace {

// ---- the hook ---------------------------------------------------------------------------
// Plain C data: the hook runs inside the planner and must neither throw nor allocate C++.

// Object ids the planner sees for hypothetical indexes are taken from the top of the OID
// space, skipping any that pg_class uses (see fake_oids()); the hook also checks them against
// every index the planner already knows for the relation, so that a plan's index OID always
// names exactly one index: the real one or the hypothetical one.
constexpr Oid kFakeOidTop = 0xFFFFFFFEu;

struct ActiveIndex {
    Oid table;
    Oid fake_oid;
    int nkeys;
    int ncolumns;
    AttrNumber columns[INDEX_MAX_KEYS];
    Oid opfamily[INDEX_MAX_KEYS];  // of the key columns' default B-tree operator classes
    Oid opcintype[INDEX_MAX_KEYS];
    bool has_predicate;
    bool predicate_is_null;
    AttrNumber predicate_column;
    double tuple_fraction;  // share of the table's rows in a partial index
    BlockNumber pages;
    int tree_height;
};

get_relation_info_hook_type previous_hook = nullptr;
const ActiveIndex *active_indexes = nullptr;  // set only while plan_with() plans
int active_count = 0;
bool oid_collision = false;  // a hypothetical OID equalled one the planner already had

Var *column_var(Relation rel, Index varno, AttrNumber attnum) {
    Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
    return makeVar(varno, attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
}

// Mirrors what get_relation_info() fills in for a real B-tree index.
void add_hypothetical_index(RelOptInfo *rel, Relation relation, const ActiveIndex &h) {
    IndexAmRoutine *am = GetIndexAmRoutineByAmId(BTREE_AM_OID, false);
    IndexOptInfo *info = makeNode(IndexOptInfo);
    int ncol = h.ncolumns, nkey = h.nkeys;

    info->indexoid = h.fake_oid;
    info->reltablespace = InvalidOid;
    info->rel = rel;
    info->ncolumns = ncol;
    info->nkeycolumns = nkey;
    info->indexkeys = static_cast<int *>(palloc0(sizeof(int) * ncol));
    info->indexcollations = static_cast<Oid *>(palloc0(sizeof(Oid) * nkey));
    info->opfamily = static_cast<Oid *>(palloc0(sizeof(Oid) * nkey));
    info->opcintype = static_cast<Oid *>(palloc0(sizeof(Oid) * nkey));
    info->canreturn = static_cast<bool *>(palloc0(sizeof(bool) * ncol));
    info->opclassoptions = static_cast<bytea **>(palloc0(sizeof(bytea *) * ncol));
    info->reverse_sort = static_cast<bool *>(palloc0(sizeof(bool) * nkey));
    info->nulls_first = static_cast<bool *>(palloc0(sizeof(bool) * nkey));
    info->relam = BTREE_AM_OID;
    for (int i = 0; i < ncol; ++i) {
        AttrNumber attnum = h.columns[i];
        Form_pg_attribute att = TupleDescAttr(RelationGetDescr(relation), attnum - 1);
        info->indexkeys[i] = attnum;
        info->canreturn[i] = true;  // B-tree returns every column
        info->indextlist = lappend(
            info->indextlist,
            makeTargetEntry(reinterpret_cast<Expr *>(column_var(relation, rel->relid, attnum)),
                            i + 1, nullptr, false));
        if (i >= nkey) continue;
        info->opfamily[i] = h.opfamily[i];
        info->opcintype[i] = h.opcintype[i];
        info->indexcollations[i] = att->attcollation;
    }
    info->sortopfamily = info->opfamily;  // B-tree: the opfamily is the sort opfamily
    if (h.has_predicate) {
        NullTest *test = makeNode(NullTest);
        test->arg = reinterpret_cast<Expr *>(column_var(relation, rel->relid, h.predicate_column));
        test->nulltesttype = h.predicate_is_null ? IS_NULL : IS_NOT_NULL;
        test->argisrow = false;
        test->location = -1;
        info->indpred = list_make1(test);
    }
    info->pages = h.pages;
    info->tuples = h.has_predicate ? rel->tuples * h.tuple_fraction : rel->tuples;
    info->tree_height = h.tree_height;
    info->unique = false;
    info->immediate = true;
    info->hypothetical = true;  // keeps selfuncs from reading the index
    info->amcanorderbyop = am->amcanorderbyop;
    info->amoptionalkey = am->amoptionalkey;
    info->amsearcharray = am->amsearcharray;
    info->amsearchnulls = am->amsearchnulls;
    info->amcanparallel = am->amcanparallel;
    info->amhasgettuple = am->amgettuple != nullptr;
    info->amhasgetbitmap = am->amgetbitmap != nullptr;
    info->amcanmarkpos = am->ammarkpos != nullptr && am->amrestrpos != nullptr;
    info->amcostestimate = reinterpret_cast<void (*)()>(am->amcostestimate);
    rel->indexlist = lcons(info, rel->indexlist);
}

void whatif_get_relation_info(PlannerInfo *root, Oid relid, bool inhparent, RelOptInfo *rel) {
    if (previous_hook) previous_hook(root, relid, inhparent, rel);
    if (active_indexes == nullptr || inhparent) return;
    Relation relation = nullptr;
    for (int i = 0; i < active_count; ++i) {
        if (active_indexes[i].table != relid) continue;
        ListCell *lc;
        foreach (lc, rel->indexlist)
            if (static_cast<IndexOptInfo *>(lfirst(lc))->indexoid == active_indexes[i].fake_oid)
                oid_collision = true;
        if (relation == nullptr) relation = table_open(relid, NoLock);  // the planner holds a lock
        add_hypothetical_index(rel, relation, active_indexes[i]);
    }
    if (relation != nullptr) table_close(relation, NoLock);
}

// ---- planning ---------------------------------------------------------------------------

// The hypothetical index with this OID, or -1.
int hypothetical_index(Oid indexid) {
    for (int i = 0; i < active_count; ++i)
        if (active_indexes[i].fake_oid == indexid) return i;
    return -1;
}

void mark_used_indexes(Plan *plan, bool *used) {
    for (; plan != nullptr; plan = plan->righttree) {
        Oid indexid = InvalidOid;
        List *children = NIL;
        switch (nodeTag(plan)) {
            case T_IndexScan:
                indexid = reinterpret_cast<IndexScan *>(plan)->indexid;
                break;
            case T_IndexOnlyScan:
                indexid = reinterpret_cast<IndexOnlyScan *>(plan)->indexid;
                break;
            case T_BitmapIndexScan:
                indexid = reinterpret_cast<BitmapIndexScan *>(plan)->indexid;
                break;
            case T_Append:
                children = reinterpret_cast<Append *>(plan)->appendplans;
                break;
            case T_MergeAppend:
                children = reinterpret_cast<MergeAppend *>(plan)->mergeplans;
                break;
            case T_BitmapAnd:
                children = reinterpret_cast<BitmapAnd *>(plan)->bitmapplans;
                break;
            case T_BitmapOr:
                children = reinterpret_cast<BitmapOr *>(plan)->bitmapplans;
                break;
            case T_SubqueryScan:
                mark_used_indexes(reinterpret_cast<SubqueryScan *>(plan)->subplan, used);
                break;
            default:
                break;
        }
        if (OidIsValid(indexid)) {
            int i = hypothetical_index(indexid);
            if (i >= 0) used[i] = true;
        }
        ListCell *lc;
        foreach (lc, children) mark_used_indexes(static_cast<Plan *>(lfirst(lc)), used);
        mark_used_indexes(plan->lefttree, used);
    }
}

// ---- plan shape ----------------------------------------------------------------------------
// C-style, inside the planner's PG_TRY: node names as EXPLAIN prints them, the relation of a
// scan and the index it uses, children in parentheses; no costs.

struct NodeName {
    NodeTag tag;
    const char *name;
};
constexpr NodeName kNodeNames[] = {
    {T_Result, "Result"},
    {T_ProjectSet, "ProjectSet"},
    {T_Append, "Append"},
    {T_MergeAppend, "Merge Append"},
    {T_RecursiveUnion, "Recursive Union"},
    {T_BitmapAnd, "BitmapAnd"},
    {T_BitmapOr, "BitmapOr"},
    {T_NestLoop, "Nested Loop"},
    {T_MergeJoin, "Merge Join"},
    {T_HashJoin, "Hash Join"},
    {T_SeqScan, "Seq Scan"},
    {T_SampleScan, "Sample Scan"},
    {T_Gather, "Gather"},
    {T_GatherMerge, "Gather Merge"},
    {T_IndexScan, "Index Scan"},
    {T_IndexOnlyScan, "Index Only Scan"},
    {T_BitmapIndexScan, "Bitmap Index Scan"},
    {T_BitmapHeapScan, "Bitmap Heap Scan"},
    {T_TidScan, "Tid Scan"},
    {T_TidRangeScan, "Tid Range Scan"},
    {T_SubqueryScan, "Subquery Scan"},
    {T_FunctionScan, "Function Scan"},
    {T_TableFuncScan, "Table Function Scan"},
    {T_ValuesScan, "Values Scan"},
    {T_CteScan, "CTE Scan"},
    {T_NamedTuplestoreScan, "Named Tuplestore Scan"},
    {T_WorkTableScan, "WorkTable Scan"},
    {T_ForeignScan, "Foreign Scan"},
    {T_CustomScan, "Custom Scan"},
    {T_Material, "Materialize"},
    {T_Memoize, "Memoize"},
    {T_Sort, "Sort"},
    {T_IncrementalSort, "Incremental Sort"},
    {T_Group, "Group"},
    {T_Agg, "Aggregate"},
    {T_WindowAgg, "WindowAgg"},
    {T_Unique, "Unique"},
    {T_SetOp, "SetOp"},
    {T_LockRows, "LockRows"},
    {T_Limit, "Limit"},
    {T_Hash, "Hash"},
};

const char *node_name(const Plan *plan) {
    if (IsA(plan, ModifyTable)) {
        switch (reinterpret_cast<const ModifyTable *>(plan)->operation) {
            case CMD_INSERT:
                return "Insert";
            case CMD_UPDATE:
                return "Update";
            case CMD_DELETE:
                return "Delete";
            case CMD_MERGE:
                return "Merge";
            default:
                return "ModifyTable";
        }
    }
    for (const NodeName &n : kNodeNames)
        if (n.tag == nodeTag(plan)) return n.name;
    return "Plan";
}

void append_relation(StringInfo out, Oid relid) {
    char *name = get_rel_name(relid);
    char *schema = get_namespace_name(get_rel_namespace(relid));
    if (name == nullptr) {
        appendStringInfo(out, "%u", relid);
        return;
    }
    appendStringInfo(out, "%s.%s", schema ? quote_identifier(schema) : "?", quote_identifier(name));
}

constexpr int kShapeMaxLength = 4000;  // a plan of a huge query is cut here
constexpr int kShapeMaxDepth = 64;

void append_shape(StringInfo out, const Plan *plan, List *rtable, int depth) {
    if (plan == nullptr) return;
    if (out->len > kShapeMaxLength || depth > kShapeMaxDepth) {
        appendStringInfoString(out, "...");
        return;
    }
    appendStringInfoString(out, node_name(plan));
    Oid index = InvalidOid;
    Index scanrelid = 0;
    List *children = NIL;
    switch (nodeTag(plan)) {
        case T_IndexScan:
            index = reinterpret_cast<const IndexScan *>(plan)->indexid;
            break;
        case T_IndexOnlyScan:
            index = reinterpret_cast<const IndexOnlyScan *>(plan)->indexid;
            break;
        case T_BitmapIndexScan:
            index = reinterpret_cast<const BitmapIndexScan *>(plan)->indexid;
            break;
        case T_ModifyTable:
            scanrelid = reinterpret_cast<const ModifyTable *>(plan)->nominalRelation;
            break;
        case T_Append:
            children = reinterpret_cast<const Append *>(plan)->appendplans;
            break;
        case T_MergeAppend:
            children = reinterpret_cast<const MergeAppend *>(plan)->mergeplans;
            break;
        case T_BitmapAnd:
            children = reinterpret_cast<const BitmapAnd *>(plan)->bitmapplans;
            break;
        case T_BitmapOr:
            children = reinterpret_cast<const BitmapOr *>(plan)->bitmapplans;
            break;
        case T_SubqueryScan:
            children = list_make1(reinterpret_cast<const SubqueryScan *>(plan)->subplan);
            break;
        default:
            break;
    }
    if (OidIsValid(index)) {
        appendStringInfoString(out, " using ");
        append_relation(out, index);
    }
    switch (nodeTag(plan)) {
        case T_SeqScan:
        case T_SampleScan:
        case T_IndexScan:
        case T_IndexOnlyScan:
        case T_BitmapHeapScan:
        case T_TidScan:
        case T_TidRangeScan:
            scanrelid = reinterpret_cast<const Scan *>(plan)->scanrelid;
            break;
        default:
            break;
    }
    if (scanrelid > 0 && static_cast<int>(scanrelid) <= list_length(rtable)) {
        RangeTblEntry *rte = rt_fetch(scanrelid, rtable);
        if (rte->rtekind == RTE_RELATION) {
            appendStringInfoString(out, " on ");
            append_relation(out, rte->relid);
        }
    }
    if (plan->lefttree == nullptr && plan->righttree == nullptr && children == NIL) return;
    appendStringInfoChar(out, '(');
    bool first = true;
    auto child = [&](const Plan *p) {
        if (p == nullptr) return;
        if (!first) appendStringInfoString(out, ", ");
        first = false;
        append_shape(out, p, rtable, depth + 1);
    };
    ListCell *lc;
    foreach (lc, children) child(static_cast<const Plan *>(lfirst(lc)));
    child(plan->lefttree);
    child(plan->righttree);
    appendStringInfoChar(out, ')');
}

struct PlanCall {
    StringInfo shape;  // nullptr: not wanted
    List *queries;
    const ActiveIndex *indexes;
    int count;
    bool check_permissions;
    double cost;
    bool *used;
    MemoryContext scratch;
    bool collision;
};

// C-style: no C++ objects with destructors; the hook is active only inside, on every path.
void plan_queries(void *arg) {
    auto *call = static_cast<PlanCall *>(arg);
    MemoryContext caller = MemoryContextSwitchTo(call->scratch);
    active_indexes = call->indexes;
    active_count = call->count;
    oid_collision = false;
    PG_TRY();
    {
        ListCell *lc;
        foreach (lc, call->queries) {
            Query *query = static_cast<Query *>(copyObjectImpl(lfirst(lc)));
            PlannedStmt *stmt = standard_planner(query, nullptr, CURSOR_OPT_PARALLEL_OK, nullptr);
            // As the executor checks them: as the planning role, views as their owners.
            if (call->check_permissions) ExecCheckRTPerms(stmt->rtable, true);
            call->cost += stmt->planTree->total_cost;
            if (call->shape != nullptr) {
                if (call->shape->len > 0) appendStringInfoString(call->shape, "; ");
                append_shape(call->shape, stmt->planTree, stmt->rtable, 0);
                ListCell *sp;
                foreach (sp, stmt->subplans) {
                    appendStringInfoString(call->shape, " + SubPlan(");
                    append_shape(call->shape, static_cast<Plan *>(lfirst(sp)), stmt->rtable, 1);
                    appendStringInfoChar(call->shape, ')');
                }
            }
            mark_used_indexes(stmt->planTree, call->used);
            ListCell *sp;
            foreach (sp, stmt->subplans)
                mark_used_indexes(static_cast<Plan *>(lfirst(sp)), call->used);
        }
        call->collision = oid_collision;
    }
    PG_FINALLY();
    {
        active_indexes = nullptr;
        active_count = 0;
        oid_collision = false;
        MemoryContextSwitchTo(caller);
        MemoryContextReset(call->scratch);
    }
    PG_END_TRY();
}

// Runs fn(arg) as `role` inside a security-restricted operation, as ANALYZE and index builds
// run code of a table's owner: planning evaluates IMMUTABLE and STABLE functions of the
// statement (constant folding, selectivity estimates), which are code of whoever wrote it.
// Settings those functions change are undone with the GUC nest level; user id, security
// context and settings are restored on every exit, the error path included.  C-style.
void run_restricted(Oid role, void (*fn)(void *), void *arg) {
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(
        role, saved_context | SECURITY_RESTRICTED_OPERATION | SECURITY_LOCAL_USERID_CHANGE);
    int nest_level = NewGUCNestLevel();
    PG_TRY();
    { fn(arg); }
    PG_FINALLY();
    {
        AtEOXact_GUC(false, nest_level);
        SetUserIdAndSecContext(saved_user, saved_context);
    }
    PG_END_TRY();
}

PlanCounters counters;
MemoryContext scratch_context = nullptr;

// Default B-tree operator class of a type, or InvalidOid.  GetDefaultOpClass reads every
// B-tree class of pg_opclass: repeated for each column use, table column and what-if plan it
// was a seventh of the advisor's time.  Kept for one advisor call (begin_costing) within one
// transaction.  Plain PostgreSQL style (may ereport), allocates nothing.
struct DefaultOpclass {
    Oid type;
    Oid opclass;
};
DefaultOpclass opclass_cache[64];
int opclass_cached = 0;
LocalTransactionId opclass_cached_in = InvalidLocalTransactionId;

Oid default_btree_opclass(Oid type) {
    if (opclass_cached_in != MyProc->lxid) {
        opclass_cached = 0;
        opclass_cached_in = MyProc->lxid;
    }
    for (int i = 0; i < opclass_cached; ++i)
        if (opclass_cache[i].type == type) return opclass_cache[i].opclass;
    Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);
    if (opclass_cached < static_cast<int>(lengthof(opclass_cache)))
        opclass_cache[opclass_cached++] = {type, opclass};
    return opclass;
}

// Default B-tree operator family and input type of a column's type.
struct BtreeOpclass {
    Oid family = InvalidOid;
    Oid input_type = InvalidOid;
};

BtreeOpclass btree_opclass_of(Oid relid, AttrNumber attnum) {
    return pg::pg_call([relid, attnum] {
        Oid type = get_atttype(relid, attnum);
        Oid opclass = default_btree_opclass(type);
        if (!OidIsValid(opclass))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("type %s has no default B-tree operator class", format_type_be(type))));
        BtreeOpclass o;
        o.family = get_opclass_family(opclass);
        o.input_type = get_opclass_input_type(opclass);
        return o;
    });
}

// ---- describing a statement ---------------------------------------------------------------

enum FactKind { kRefColumn = 100, kWholeRow = 101 };

struct Fact {
    Oid relid;
    AttrNumber attnum;
    int kind;  // a UseKind, kRefColumn or kWholeRow
};

struct WalkContext {
    List *query_stack;  // innermost query first
    List *facts;        // of Fact *
};

void add_fact(WalkContext *ctx, Oid relid, AttrNumber attnum, int kind) {
    Fact *f = static_cast<Fact *>(palloc(sizeof(Fact)));
    f->relid = relid;
    f->attnum = attnum;
    f->kind = kind;
    ctx->facts = lappend(ctx->facts, f);
}

// The table column behind a Var (through join alias variables), or false.
bool resolve_var(WalkContext *ctx, const Var *var, Oid *relid, AttrNumber *attnum) {
    if (static_cast<int>(var->varlevelsup) >= list_length(ctx->query_stack)) return false;
    Query *query = static_cast<Query *>(list_nth(ctx->query_stack, var->varlevelsup));
    Index varno = var->varno;
    AttrNumber att = var->varattno;
    for (int depth = 0; depth < 16; ++depth) {
        if (varno < 1 || static_cast<int>(varno) > list_length(query->rtable)) return false;
        RangeTblEntry *rte = rt_fetch(varno, query->rtable);
        if (rte->rtekind == RTE_RELATION) {
            *relid = rte->relid;
            *attnum = att;
            return true;
        }
        Node *alias = nullptr;
        if (rte->rtekind == RTE_JOIN && att > 0 && att <= list_length(rte->joinaliasvars)) {
            alias = static_cast<Node *>(list_nth(rte->joinaliasvars, att - 1));
        } else if (rte->rtekind == RTE_SUBQUERY && rte->subquery != nullptr && att > 0 &&
                   rte->subquery->setOperations == nullptr) {
            // A view or a subquery in FROM: follow its output column into it.
            TargetEntry *tle = get_tle_by_resno(rte->subquery->targetList, att);
            if (tle == nullptr || tle->resjunk) return false;
            alias = reinterpret_cast<Node *>(tle->expr);
            query = rte->subquery;
        }
        alias = strip_implicit_coercions(alias);
        if (alias == nullptr || !IsA(alias, Var) ||
            reinterpret_cast<Var *>(alias)->varlevelsup != 0)
            return false;
        varno = reinterpret_cast<Var *>(alias)->varno;
        att = reinterpret_cast<Var *>(alias)->varattno;
    }
    return false;
}

Var *plain_var(Node *node) {
    node = strip_implicit_coercions(node);
    return node != nullptr && IsA(node, Var) ? reinterpret_cast<Var *>(node) : nullptr;
}

// Equality or range when the operator belongs to the column type's default B-tree family.
int btree_use(Oid type, Oid opno) {
    Oid opclass = default_btree_opclass(type);
    if (!OidIsValid(opclass)) return -1;
    int strategy = get_op_opfamily_strategy(opno, get_opclass_family(opclass));
    if (strategy == 0) return -1;
    return strategy == BTEqualStrategyNumber ? static_cast<int>(UseKind::Equality)
                                             : static_cast<int>(UseKind::Range);
}

// "column op value" where value holds no column of this query level and is stable.
void column_against_value(WalkContext *ctx, Var *column, Node *value, Oid opno) {
    if (column->varlevelsup != 0 || contain_vars_of_level(value, 0) ||
        contain_volatile_functions(value))
        return;
    Oid relid;
    AttrNumber attnum;
    if (!resolve_var(ctx, column, &relid, &attnum) || attnum <= 0) return;
    int kind = btree_use(column->vartype, opno);
    if (kind >= 0) add_fact(ctx, relid, attnum, kind);
}

void describe_query(Query *query, WalkContext *ctx);

bool describe_walker(Node *node, void *context) {
    auto *ctx = static_cast<WalkContext *>(context);
    if (node == nullptr) return false;
    if (IsA(node, Query)) {
        describe_query(reinterpret_cast<Query *>(node), ctx);
        return false;
    }
    if (IsA(node, Var)) {
        Oid relid;
        AttrNumber attnum;
        if (resolve_var(ctx, reinterpret_cast<Var *>(node), &relid, &attnum))
            add_fact(ctx, relid, attnum, attnum == 0 ? kWholeRow : kRefColumn);
        return false;
    }
    if (IsA(node, OpExpr) && list_length(reinterpret_cast<OpExpr *>(node)->args) == 2) {
        auto *op = reinterpret_cast<OpExpr *>(node);
        Node *left = static_cast<Node *>(linitial(op->args));
        Node *right = static_cast<Node *>(lsecond(op->args));
        Var *lv = plain_var(left), *rv = plain_var(right);
        if (lv && rv && lv->varlevelsup == 0 && rv->varlevelsup == 0) {
            Oid lrel, rrel;
            AttrNumber latt, ratt;
            if (lv->varno != rv->varno && resolve_var(ctx, lv, &lrel, &latt) &&
                resolve_var(ctx, rv, &rrel, &ratt) && latt > 0 && ratt > 0 &&
                btree_use(lv->vartype, op->opno) == static_cast<int>(UseKind::Equality)) {
                add_fact(ctx, lrel, latt, static_cast<int>(UseKind::Join));
                add_fact(ctx, rrel, ratt, static_cast<int>(UseKind::Join));
            }
        } else if (lv) {
            column_against_value(ctx, lv, right, op->opno);
        } else if (rv) {
            column_against_value(ctx, rv, left, op->opno);
        }
    } else if (IsA(node, ScalarArrayOpExpr)) {
        auto *op = reinterpret_cast<ScalarArrayOpExpr *>(node);
        Var *column = list_length(op->args) == 2
                          ? plain_var(static_cast<Node *>(linitial(op->args)))
                          : nullptr;
        if (op->useOr && column)
            column_against_value(ctx, column, static_cast<Node *>(lsecond(op->args)), op->opno);
    } else if (IsA(node, NullTest)) {
        auto *test = reinterpret_cast<NullTest *>(node);
        Var *column = test->argisrow ? nullptr : plain_var(reinterpret_cast<Node *>(test->arg));
        Oid relid;
        AttrNumber attnum;
        if (column && column->varlevelsup == 0 && resolve_var(ctx, column, &relid, &attnum) &&
            attnum > 0)
            add_fact(ctx, relid, attnum,
                     static_cast<int>(test->nulltesttype == IS_NULL ? UseKind::IsNull
                                                                    : UseKind::IsNotNull));
    }
    return expression_tree_walker(
        node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(describe_walker)), context);
}

void sort_facts(Query *query, List *clauses, WalkContext *ctx) {
    ListCell *lc;
    foreach (lc, clauses) {
        auto *clause = static_cast<SortGroupClause *>(lfirst(lc));
        TargetEntry *tle = get_sortgroupclause_tle(clause, query->targetList);
        Var *column = plain_var(reinterpret_cast<Node *>(tle->expr));
        Oid relid;
        AttrNumber attnum;
        if (column && column->varlevelsup == 0 && resolve_var(ctx, column, &relid, &attnum) &&
            attnum > 0)
            add_fact(ctx, relid, attnum, static_cast<int>(UseKind::Sort));
    }
}

void describe_query(Query *query, WalkContext *ctx) {
    ctx->query_stack = lcons(query, ctx->query_stack);
    sort_facts(query, query->sortClause, ctx);
    if (query->sortClause == NIL) sort_facts(query, query->groupClause, ctx);
    query_tree_walker(
        query, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(describe_walker)), ctx, 0);
    ctx->query_stack = list_delete_first(ctx->query_stack);
}

// Tables an index can be built on by the caller's statements.  Not an extension's tables:
// the extension decides their indexes (and a dump would lose one added by hand).
bool indexable(Oid relid) {
    char kind = get_rel_relkind(relid);
    if (kind != RELKIND_RELATION && kind != RELKIND_MATVIEW) return false;
    if (IsCatalogRelationOid(relid)) return false;
    if (isAnyTempNamespace(get_rel_namespace(relid))) return false;
    return !OidIsValid(getExtensionOfObject(RelationRelationId, relid));
}

}  // namespace

void install_whatif_hook() {
    previous_hook = get_relation_info_hook;
    get_relation_info_hook = whatif_get_relation_info;
}

namespace {
struct AnalyseCall {
    const char *sql;
    const Oid *param_types;  // InvalidOid: inferred
    int param_count;
    List *result;
};

void analyse_restricted(void *arg) {
    auto *call = static_cast<AnalyseCall *>(arg);
    const char *sql = call->sql;
    List *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
    if (list_length(raw) != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("expected exactly one statement, got %d", list_length(raw))));
    RawStmt *stmt = linitial_node(RawStmt, raw);
    switch (nodeTag(stmt->stmt)) {
        case T_SelectStmt:
        case T_InsertStmt:
        case T_UpdateStmt:
        case T_DeleteStmt:
            break;
        default:
            call->result = NIL;
            return;
    }
    // Types given for some parameters (the others are inferred): parse_analyze_varparams
    // may enlarge the array, so it is palloc'd.
    int param_count = call->param_count;
    Oid *param_types = nullptr;
    if (param_count > 0) {
        param_types = static_cast<Oid *>(palloc(sizeof(Oid) * param_count));
        for (int i = 0; i < param_count; ++i) param_types[i] = call->param_types[i];
    }
    Query *query = parse_analyze_varparams(stmt, sql, &param_types, &param_count, nullptr);
    call->result = QueryRewrite(query);
}

// Only constants, parameters, casts, operators and function calls over them (what
// pg_stat_statements keeps of VALUES lists and generated rows): anything else, a subquery
// first, sends the statement to the full analysis.
bool simple_expression(Node *node) {
    if (node == nullptr) return true;
    switch (nodeTag(node)) {
        case T_List: {
            ListCell *lc;
            foreach (lc, castNode(List, node))
                if (!simple_expression(static_cast<Node *>(lfirst(lc)))) return false;
            return true;
        }
        case T_A_Const:
        case T_ParamRef:
        case T_ColumnRef:  // a column of the generated rows: FROM holds functions alone
        case T_SetToDefault:
        case T_SQLValueFunction:
            return true;
        case T_ResTarget:
            return simple_expression(castNode(ResTarget, node)->val);
        case T_TypeCast:
            return simple_expression(castNode(TypeCast, node)->arg);
        case T_A_Expr: {
            auto *e = castNode(A_Expr, node);
            return simple_expression(e->lexpr) && simple_expression(e->rexpr);
        }
        case T_FuncCall: {
            auto *f = castNode(FuncCall, node);
            return f->over == nullptr && f->agg_filter == nullptr && f->agg_order == NIL &&
                   simple_expression(reinterpret_cast<Node *>(f->args));
        }
        case T_RowExpr:
            return simple_expression(reinterpret_cast<Node *>(castNode(RowExpr, node)->args));
        case T_A_ArrayExpr:
            return simple_expression(
                reinterpret_cast<Node *>(castNode(A_ArrayExpr, node)->elements));
        case T_CoalesceExpr:
            return simple_expression(reinterpret_cast<Node *>(castNode(CoalesceExpr, node)->args));
        case T_BoolExpr:
            return simple_expression(reinterpret_cast<Node *>(castNode(BoolExpr, node)->args));
        case T_NullTest:
            return simple_expression(reinterpret_cast<Node *>(castNode(NullTest, node)->arg));
        default:
            return false;
    }
}

bool plain_rows(SelectStmt *sel) {
    if (sel == nullptr) return true;  // DEFAULT VALUES
    if (sel->op != SETOP_NONE || sel->whereClause || sel->groupClause || sel->havingClause ||
        sel->sortClause || sel->distinctClause || sel->windowClause || sel->withClause ||
        sel->limitCount || sel->limitOffset || sel->lockingClause || sel->intoClause)
        return false;
    ListCell *lc;
    foreach (lc, sel->fromClause) {
        auto *item = static_cast<Node *>(lfirst(lc));
        if (!IsA(item, RangeFunction)) return false;
        ListCell *fc;
        foreach (fc, castNode(RangeFunction, item)->functions)  // (call, column definitions)
            if (!simple_expression(static_cast<Node *>(linitial(castNode(List, lfirst(fc))))))
                return false;
    }
    return simple_expression(reinterpret_cast<Node *>(sel->targetList)) &&
           simple_expression(reinterpret_cast<Node *>(sel->valuesLists));
}

struct PlainInsertCall {
    const char *sql;
    Oid target;
};

void plain_insert_restricted(void *arg) {
    auto *call = static_cast<PlainInsertCall *>(arg);
    List *raw = raw_parser(call->sql, RAW_PARSE_DEFAULT);
    if (list_length(raw) != 1) return;
    Node *stmt = linitial_node(RawStmt, raw)->stmt;
    if (!IsA(stmt, InsertStmt)) return;
    auto *ins = castNode(InsertStmt, stmt);
    if (ins->withClause || ins->onConflictClause ||
        !simple_expression(reinterpret_cast<Node *>(ins->returningList)) ||
        !plain_rows(reinterpret_cast<SelectStmt *>(ins->selectStmt)))
        return;
    Oid relid = RangeVarGetRelid(ins->relation, NoLock, true);
    if (!OidIsValid(relid)) return;
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) return;
    auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
    // A view or a rule rewrites the INSERT into other statements: those are analysed.
    bool plain =
        (form->relkind == RELKIND_RELATION || form->relkind == RELKIND_PARTITIONED_TABLE) &&
        !form->relhasrules;
    ReleaseSysCache(tup);
    if (plain) call->target = relid;
}
}  // namespace

std::optional<Oid> plain_insert_target(const std::string &sql, Oid role) {
    PlainInsertCall call{sql.c_str(), InvalidOid};
    pg::pg_call([&call, role] { run_restricted(role, plain_insert_restricted, &call); });
    if (!OidIsValid(call.target)) return std::nullopt;
    return call.target;
}

List *analyse_statement(const std::string &sql, Oid role, const std::vector<Oid> &param_types) {
    // Names resolve, and row-level security policies apply, as for the role that runs it.
    return pg::pg_call([&sql, role, &param_types]() -> List * {
        AnalyseCall call{sql.c_str(), param_types.data(), static_cast<int>(param_types.size()),
                         NIL};
        run_restricted(role, analyse_restricted, &call);
        return call.result;
    });
}

namespace {
// OIDs for hypothetical indexes, reused from plan to plan while pg_class does not use them.
std::vector<Oid> fake_oid_pool;
Oid next_fake_oid = kFakeOidTop;

bool relation_oid_in_use(Oid oid) {
    return pg::pg_call([oid] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(oid)); });
}

// n OIDs that no relation has now.  fresh: drop the pool first (one of them collided).
const std::vector<Oid> &fake_oids(size_t n, bool fresh) {
    if (fresh) fake_oid_pool.clear();
    for (Oid &oid : fake_oid_pool)
        while (relation_oid_in_use(oid)) oid = next_fake_oid--;
    while (fake_oid_pool.size() < n) {
        Oid oid = next_fake_oid--;
        if (oid < FirstNormalObjectId) next_fake_oid = oid = kFakeOidTop;
        if (!relation_oid_in_use(oid)) fake_oid_pool.push_back(oid);
    }
    return fake_oid_pool;
}
}  // namespace

PlanCost plan_with(List *queries, const std::vector<Hypothetical> &indexes, Oid role,
                   bool check_permissions, std::string *shape) {
    if (indexes.size() > 1000)
        throw pg::UserError(
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            fmt::format("too many hypothetical indexes in one plan ({}, at most 1000)",
                        indexes.size()));
    std::vector<ActiveIndex> active(indexes.size());
    for (size_t i = 0; i < indexes.size(); ++i) {
        const Hypothetical &h = indexes[i];
        ActiveIndex &a = active[i];
        a = ActiveIndex{};
        a.table = h.table;
        a.nkeys = static_cast<int>(std::min<size_t>(h.keys.size(), INDEX_MAX_KEYS));
        a.ncolumns = a.nkeys;
        for (int k = 0; k < a.nkeys; ++k) {
            a.columns[k] = static_cast<AttrNumber>(h.keys[k]);
            BtreeOpclass opclass = btree_opclass_of(h.table, a.columns[k]);
            a.opfamily[k] = opclass.family;
            a.opcintype[k] = opclass.input_type;
        }
        for (AttrNum inc : h.include)
            if (a.ncolumns < INDEX_MAX_KEYS) a.columns[a.ncolumns++] = static_cast<AttrNumber>(inc);
        a.has_predicate = h.predicate.has_value();
        if (h.predicate) {
            a.predicate_column = static_cast<AttrNumber>(h.predicate->attnum);
            a.predicate_is_null = h.predicate->is_null;
        }
        a.tuple_fraction = h.tuple_fraction;
        a.pages = static_cast<BlockNumber>(std::min<uint64_t>(h.size.pages, MaxBlockNumber));
        a.tree_height = std::clamp(h.size.tree_height, -1, kMaxTreeHeight);
    }
    if (scratch_context == nullptr)
        scratch_context = pg::pg_call([] {
            return AllocSetContextCreate(TopMemoryContext, "db_virtuoso what-if planning",
                                         ALLOCSET_DEFAULT_SIZES);
        });
    std::unique_ptr<bool[]> used(new bool[indexes.size() + 1]);
    PlanCall call{};
    auto start = std::chrono::steady_clock::now();
    // A collision needs a relation created with one of our OIDs since fake_oids() looked:
    // take other OIDs and plan again.
    for (int attempt = 0;; ++attempt) {
        const std::vector<Oid> &oids = fake_oids(active.size(), attempt > 0);
        for (size_t i = 0; i < active.size(); ++i) active[i].fake_oid = oids[i];
        std::fill(used.get(), used.get() + indexes.size() + 1, false);
        // in the caller's context: the planner's scratch context is reset after each plan
        StringInfo shape_text =
            shape != nullptr ? pg::pg_call([] { return makeStringInfo(); }) : nullptr;
        call = PlanCall{shape_text,
                        queries,
                        active.data(),
                        static_cast<int>(active.size()),
                        check_permissions,
                        0,
                        used.get(),
                        scratch_context,
                        false};
        pg::pg_call([&call, role] { run_restricted(role, plan_queries, &call); });
        if (shape_text != nullptr) *shape = std::string(shape_text->data, shape_text->len);
        if (!call.collision) break;
        if (attempt == 2)
            throw pg::UserError(ERRCODE_OBJECT_IN_USE,
                                "hypothetical index OIDs keep colliding with real ones",
                                "Three sets of unused object ids were taken and each met an "
                                "index of the planned relations.",
                                "Retry: the ids are chosen anew on every call.");
    }
    counters.nanoseconds +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count());
    ++counters.plans;
    PlanCost result;
    result.cost = call.cost;
    for (size_t i = 0; i < indexes.size(); ++i)
        if (used[i]) result.used.push_back(i);
    return result;
}

PlanCounters plan_counters() {
    return counters;
}

void begin_costing() {
    opclass_cached = 0;
}

QueryDesc describe_statement(List *queries, std::vector<TableId> *whole_row) {
    List *facts = pg::pg_call([queries] {
        WalkContext ctx{NIL, NIL};
        ListCell *lc;
        foreach (lc, queries) describe_query(static_cast<Query *>(lfirst(lc)), &ctx);
        return ctx.facts;
    });
    QueryDesc desc;
    std::map<Oid, bool> usable;
    ListCell *lc;
    foreach (lc, facts) {
        const Fact *f = static_cast<const Fact *>(lfirst(lc));
        auto it = usable.find(f->relid);
        if (it == usable.end())
            it = usable.emplace(f->relid, pg::pg_call([f] { return indexable(f->relid); })).first;
        if (!it->second) continue;
        TableUse *tu = nullptr;
        for (TableUse &t : desc.tables)
            if (t.table == f->relid) tu = &t;
        if (tu == nullptr) {
            desc.tables.push_back(TableUse{f->relid, {}, {}});
            tu = &desc.tables.back();
        }
        if (f->kind == kWholeRow) {
            if (whole_row) whole_row->push_back(f->relid);
        } else if (f->kind == kRefColumn) {
            if (std::find(tu->referenced.begin(), tu->referenced.end(), f->attnum) ==
                tu->referenced.end())
                tu->referenced.push_back(f->attnum);
        } else {
            tu->uses.push_back(ColumnUse{f->attnum, static_cast<UseKind>(f->kind)});
        }
    }
    return desc;
}

namespace {
struct ColumnRaw {
    AttrNumber attnum;
    NameData name;
    char align;
    double avg_width;
    double n_distinct;
    double null_frac;
    bool has_stats;
    bool btree;
    bool varlena;
    bool dedup;
};
}  // namespace

TableInfo describe_table(Oid relid) {
    TableInfo info;
    info.name = pg::qualified_relation_name(relid);
    struct Raw {
        double pages, tuples;
        int count;
        ColumnRaw *columns;
    };
    Raw raw = pg::pg_call([relid] {
        Raw r{0, 0, 0, nullptr};
        Relation rel = table_open(relid, AccessShareLock);
        BlockNumber pages = 0;
        double tuples = 0, allvisfrac = 0;
        estimate_rel_size(rel, nullptr, &pages, &tuples, &allvisfrac);
        r.pages = pages;
        r.tuples = tuples;
        TupleDesc desc = RelationGetDescr(rel);
        r.columns = static_cast<ColumnRaw *>(palloc0(sizeof(ColumnRaw) * (desc->natts + 1)));
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (att->attisdropped) continue;
            ColumnRaw &c = r.columns[r.count++];
            c.attnum = att->attnum;
            c.name = att->attname;
            c.align = att->attalign;
            int32 width = get_attavgwidth(relid, att->attnum);
            c.avg_width = width > 0 ? width : get_typavgwidth(att->atttypid, att->atttypmod);
            Oid opclass = default_btree_opclass(att->atttypid);
            c.btree = OidIsValid(opclass);
            c.varlena = att->attlen == -1;
            // Deduplication needs every key's "equal implies image-equal" support function
            // to say yes for the column's collation, as _bt_allequalimage asks (numeric,
            // float and, in recent releases, bpchar say no).  Only built-in functions are
            // called: a user-defined one is other roles' code.
            if (c.btree) {
                Oid family = get_opclass_family(opclass);
                Oid intype = get_opclass_input_type(opclass);
                Oid proc = get_opfamily_proc(family, intype, intype, BTEQUALIMAGE_PROC);
                c.dedup = OidIsValid(proc) && proc < FirstNormalObjectId &&
                          DatumGetBool(OidFunctionCall1Coll(proc, att->attcollation,
                                                            ObjectIdGetDatum(intype)));
            }
            HeapTuple stats = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
                                              Int16GetDatum(att->attnum), BoolGetDatum(false));
            if (HeapTupleIsValid(stats)) {
                auto *s = reinterpret_cast<Form_pg_statistic>(GETSTRUCT(stats));
                c.has_stats = true;
                c.n_distinct = s->stadistinct;
                c.null_frac = s->stanullfrac;
                ReleaseSysCache(stats);
            }
        }
        table_close(rel, NoLock);
        return r;
    });
    info.pages = raw.pages;
    info.tuples = raw.tuples;
    for (int i = 0; i < raw.count; ++i) {
        const ColumnRaw &c = raw.columns[i];
        ColumnInfo col;
        col.name = NameStr(c.name);
        col.align = c.align == TYPALIGN_DOUBLE  ? 8
                    : c.align == TYPALIGN_INT   ? 4
                    : c.align == TYPALIGN_SHORT ? 2
                                                : 1;
        col.avg_width = c.avg_width;
        col.n_distinct = c.has_stats ? c.n_distinct : 0;
        col.null_frac = c.null_frac;
        col.btree = c.btree;
        col.varlena = c.varlena;
        col.deduplicates = c.dedup;
        info.columns[c.attnum] = col;
    }

    pg::InternalSql spi;
    auto indexes = spi.execute(
        "SELECT i.indnkeyatts, i.indkey::text, i.indpred IS NOT NULL, i.indexprs IS NOT NULL "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE i.indrelid = $1::oid AND a.amname = 'btree' AND i.indisvalid",
        {std::to_string(relid)}, true);
    for (const auto &row : indexes.rows) {
        ExistingIndex e;
        int nkeys = std::stoi(*row[0]);
        std::vector<AttrNum> cols;
        std::string text = *row[1];
        size_t pos = 0;
        while (pos < text.size()) {
            size_t end = text.find(' ', pos);
            if (end == std::string::npos) end = text.size();
            cols.push_back(std::stoi(text.substr(pos, end - pos)));
            pos = end + 1;
        }
        for (size_t k = 0; k < cols.size(); ++k)
            (static_cast<int>(k) < nkeys ? e.keys : e.include).push_back(cols[k]);
        e.partial = *row[2] == "t";
        // An expression column (attnum 0) cannot serve a plain column: cut the keys there.
        auto expr = std::find(e.keys.begin(), e.keys.end(), 0);
        e.keys.erase(expr, e.keys.end());
        if (!e.keys.empty()) info.existing.push_back(e);
    }
    return info;
}

void sample_table(Oid relid, const std::set<AttrNum> &columns, TableInfo &info) {
    // As many rows as ANALYZE reads at the default statistics target.
    constexpr double kSampleRows = 30000;
    constexpr double kMaxPages = 3000;
    std::vector<AttrNum> cols;
    for (AttrNum a : columns) {
        auto c = info.columns.find(a);
        if (c != info.columns.end() && c->second.btree) cols.push_back(a);
    }
    if (cols.size() < 2) return;
    // Only what the caller could read itself, and all of it: with row-level security the
    // sample would describe the caller's rows, not the index's.
    bool readable = pg::pg_call([relid] {
        return pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
               check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED;
    });
    if (!readable) return;
    // About kSampleRows rows.  Rows chosen one by one (BERNOULLI) where the table has at most
    // as many pages as ANALYZE reads (kRowSamplePages): a sample of whole pages sees rows
    // stored together (an order's lines) together, and combinations of their values as more
    // repeated than they are (sampled_combinations).  A larger table: whole pages (SYSTEM),
    // never more than kMaxPages of them, which bounds the time.
    constexpr double kRowSamplePages = 30000;
    bool by_row = info.pages <= kRowSamplePages;
    double percent = 100;
    if (info.tuples > kSampleRows) percent = 100 * kSampleRows / info.tuples;
    if (!by_row && info.pages > kMaxPages)
        percent = std::min(percent, 100 * kMaxPages / info.pages);
    percent = std::max(percent, 0.0001);
    std::string list;
    for (AttrNum a : cols)
        list += fmt::format("{}pg_catalog.hashtextextended({}::pg_catalog.text, 0)",
                            list.empty() ? "" : ", ", pg::quote_identifier(info.columns[a].name));
    std::string sql = fmt::format(
        "SELECT {} FROM ONLY {} TABLESAMPLE {} ($1::pg_catalog.float8) "
        "REPEATABLE (0)",
        list, info.name, by_row ? "BERNOULLI" : "SYSTEM");
    std::map<AttrNum, std::vector<uint64_t>> sample;
    pg::SubTransaction sub;
    try {
        pg::SpiResult result;
        {  // SPI and its settings end before the subtransaction does
            pg::InternalSql spi(false);
            result = spi.execute(sql, {fmt::format("{}", percent)}, true);
        }
        for (const auto &row : result.rows)
            for (size_t i = 0; i < cols.size(); ++i) {
                // 0 stands for NULL; a value hashing to 0 becomes 1.
                uint64_t h = row[i] ? static_cast<uint64_t>(std::stoll(*row[i])) : 0;
                sample[cols[i]].push_back(row[i] && h == 0 ? 1 : h);
            }
        sub.commit();
    } catch (const pg::PgError &e) {
        sub.rollback();
        // A value whose text form fails (a type's output function) leaves the estimate
        // unsampled; a cancel, a shutdown or running out of resources is the caller's.
        if (pg::ends_the_call(e.sqlstate())) throw;
        return;
    }
    info.sample = std::move(sample);
    info.sample_by_page = !by_row;
}

}  // namespace virtuoso::advisor
