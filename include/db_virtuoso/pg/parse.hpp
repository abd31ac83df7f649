// Shapes of raw parse trees that several capabilities accept as user input.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "nodes/parsenodes.h"
}

namespace virtuoso::pg {

// The statement of `SELECT <one expression>` and nothing else (no FROM, WHERE, GROUP BY,
// ORDER BY, LIMIT, WITH, DISTINCT, locking, INTO, set operation or VALUES), given the list
// raw_parser returned; nullptr for any other shape.  Never raises.
SelectStmt *lone_expression_select(List *raw_statements);

}  // namespace virtuoso::pg
