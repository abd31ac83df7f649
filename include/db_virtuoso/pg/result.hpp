// Returning rows from SQL-callable functions: values in text form are turned into the
// declared result type with its input functions.
#pragma once

#include "db_virtuoso/pg/spi.hpp"

namespace virtuoso::pg {

using Row = std::vector<Value>;

// For a function declared RETURNS TABLE / SETOF: materialises the rows.
Datum return_rows(FunctionCallInfo fcinfo, const std::vector<Row> &rows);

// For a function declared RETURNS <composite>: one row.
Datum return_composite(FunctionCallInfo fcinfo, const Row &row);

}  // namespace virtuoso::pg
