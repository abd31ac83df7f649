#include "db_virtuoso/pg/result.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/tuplestore.h"
}

namespace virtuoso::pg {
namespace {

// C strings (NULL for SQL NULL) of a row, allocated in the current memory context.
char **to_cstrings(const Row &row) {
    return pg_call([&row] {
        auto **values = static_cast<char **>(palloc0(sizeof(char *) * (row.size() + 1)));
        for (size_t i = 0; i < row.size(); ++i)
            if (row[i]) values[i] = pstrdup(row[i]->c_str());
        return values;
    });
}

}  // namespace

Datum return_rows(FunctionCallInfo fcinfo, const std::vector<Row> &rows) {
    pg_call([fcinfo] { InitMaterializedSRF(fcinfo, 0); });
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    AttInMetadata *meta = pg_call([rsinfo] { return TupleDescGetAttInMetadata(rsinfo->setDesc); });
    for (const Row &row : rows) {
        if (static_cast<int>(row.size()) != rsinfo->setDesc->natts)
            throw UserError(ERRCODE_INTERNAL_ERROR, "result row has the wrong number of columns");
        char **values = to_cstrings(row);
        pg_call([&] {
            HeapTuple tuple = BuildTupleFromCStrings(meta, values);
            tuplestore_puttuple(rsinfo->setResult, tuple);
        });
    }
    return Datum(0);
}

Datum return_composite(FunctionCallInfo fcinfo, const Row &row) {
    char **values = to_cstrings(row);
    return pg_call([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("function returning a row called in a context that cannot "
                                   "accept it")));
        desc = BlessTupleDesc(desc);
        if (static_cast<int>(row.size()) != desc->natts)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("result row has %d columns, the type %d",
                                   static_cast<int>(row.size()), desc->natts)));
        HeapTuple tuple = BuildTupleFromCStrings(TupleDescGetAttInMetadata(desc), values);
        return HeapTupleGetDatum(tuple);
    });
}

}  // namespace virtuoso::pg
