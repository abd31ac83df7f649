// Index advisor, server side: the what-if planner hook (installed from _PG_init).
#pragma once

namespace virtuoso::advisor {

// Chains a get_relation_info_hook that adds hypothetical B-tree indexes to the planner's view
// of a table, only while the advisor itself is costing a statement.
void install_whatif_hook();

}  // namespace virtuoso::advisor
