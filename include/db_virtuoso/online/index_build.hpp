// Concurrent index builds through the statement runner (server side).
#pragma once

#include <functional>
#include <string>

namespace virtuoso::online {

struct IndexBuildResult {
    std::string statement;   // the CREATE INDEX CONCURRENTLY that was run
    std::string index_name;  // schema-qualified, quoted
    std::string status;      // "valid" or "exists"
    int attempts = 0;
};

// Builds the index concurrently, checks indisvalid, drops and retries invalid or
// transiently failed builds up to max_attempts.  Throws when it cannot, leaving no invalid
// index behind.  Without release_snapshot (a function call) the build is refused (25001)
// since the caller's snapshot would block it; a procedure passes a release_snapshot that
// commits its caller, called before each build.
IndexBuildResult build_index_concurrently(const std::string &definition, int max_attempts,
                                          const std::function<void()> &release_snapshot = {});

}  // namespace virtuoso::online
