#include "db_virtuoso/pg/advisory_lock.hpp"

#include "db_virtuoso/pg/guard.hpp"
#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/fmgrprotos.h"
}

namespace virtuoso::pg {

SessionAdvisoryLock::SessionAdvisoryLock(int32_t space, int32_t key) : space_(space), key_(key) {
    held_ = pg_call([space, key] {
        return DatumGetBool(DirectFunctionCall2(pg_try_advisory_lock_int4, Int32GetDatum(space),
                                                Int32GetDatum(key)));
    });
}

SessionAdvisoryLock::~SessionAdvisoryLock() {
    if (!held_) return;
    int32_t space = space_, key = key_;
    try {
        pg_call([space, key] {
            (void)DirectFunctionCall2(pg_advisory_unlock_int4, Int32GetDatum(space),
                                      Int32GetDatum(key));
        });
    } catch (...) {
        // Released at session end at the latest.
    }
}

bool try_transaction_advisory_lock(int32_t space, int32_t key) {
    return pg_call([space, key] {
        return DatumGetBool(DirectFunctionCall2(pg_try_advisory_xact_lock_int4,
                                                Int32GetDatum(space), Int32GetDatum(key)));
    });
}

}  // namespace virtuoso::pg
