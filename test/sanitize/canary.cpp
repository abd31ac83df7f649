// Self-check of the sanitizer runs (scripts/sanitize.sh, the asan suite of scripts/test.sh):
// two deliberate defects that a server started the sanitizer way must report and abort on.
// If either goes unnoticed, the instrumentation or the report collection is broken and a
// clean sanitizer run would prove nothing.  Built with the module's sanitizer flags, loaded
// only into the throwaway cluster of the self-check, never part of the extension.
extern "C" {
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;
PG_FUNCTION_INFO_V1(sanitizer_canary_heap_overflow);
PG_FUNCTION_INFO_V1(sanitizer_canary_shift);
}

// Reads element 4 of an n-element array from new[]: with n = 4 one past the end, which only
// ASan sees (the size is not known at compile time, so UBSan's object-size check cannot).
extern "C" Datum sanitizer_canary_heap_overflow(PG_FUNCTION_ARGS)
{
    int n = PG_GETARG_INT32(0);
    int *values = new int[n]();
    int read = values[4];
    delete[] values;
    PG_RETURN_INT32(read);
}

// 1 << n with n = 40 shifts past the width of int: undefined behaviour.
extern "C" Datum sanitizer_canary_shift(PG_FUNCTION_ARGS)
{
    int n = PG_GETARG_INT32(0);
    PG_RETURN_INT32(1 << n);
}
