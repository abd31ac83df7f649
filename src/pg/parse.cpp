#include "db_virtuoso/pg/parse.hpp"

namespace virtuoso::pg {

SelectStmt *lone_expression_select(List *raw_statements) {
    if (list_length(raw_statements) != 1) return nullptr;
    Node *stmt = linitial_node(RawStmt, raw_statements)->stmt;
    if (!IsA(stmt, SelectStmt)) return nullptr;
    auto *s = reinterpret_cast<SelectStmt *>(stmt);
    if (list_length(s->targetList) != 1 || s->fromClause || s->whereClause || s->groupClause ||
        s->havingClause || s->windowClause || s->sortClause || s->limitCount || s->limitOffset ||
        s->withClause || s->distinctClause || s->lockingClause || s->intoClause ||
        s->op != SETOP_NONE || s->valuesLists)
        return nullptr;
    return s;
}

}  // namespace virtuoso::pg
