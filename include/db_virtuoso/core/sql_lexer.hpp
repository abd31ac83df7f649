// Pure C++ (no postgres.h): a lexer for SQL text that knows PostgreSQL's comments, quoting
// and dollar quoting.  The server's own parser decides what a statement means; this only
// finds keywords and their positions, e.g. to insert CONCURRENTLY into an index definition.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace virtuoso::core {

enum class TokenKind { Word, QuotedIdentifier, String, Number, Parameter, Punctuation };

struct Token {
    TokenKind kind;
    std::string_view text;
    size_t offset;

    // Case-insensitive comparison of an unquoted word with a keyword (upper case).
    bool is_keyword(std::string_view upper) const;
};

// Splits sql into tokens, skipping whitespace and comments.  Unterminated quotes or
// comments leave the rest of the text as one token: the server's parser reports them.
std::vector<Token> tokenize(std::string_view sql);

// "CREATE [UNIQUE] INDEX [CONCURRENTLY] ..." -> the same text with CONCURRENTLY present.
// Returns nullopt, with a reason in *error, when sql does not start like an index
// definition.
std::optional<std::string> with_concurrently(std::string_view sql, std::string *error);

// The first token of sql after comments and opening parentheses when it is a word ("(select
// ..." -> select); nullopt when something else comes first.  The token views sql.
std::optional<Token> leading_word(std::string_view sql);

// Whether sql may be a query an index can serve (SELECT, INSERT, UPDATE, DELETE, MERGE, WITH,
// VALUES, TABLE, after comments and opening parentheses): false for utility statements
// (CREATE, VACUUM, BEGIN, SET...), which the index advisor can skip without parsing them.
bool may_be_query(std::string_view sql);
// The same from the statement's leading_word().
bool may_be_query(const std::optional<Token> &first);

}  // namespace virtuoso::core
