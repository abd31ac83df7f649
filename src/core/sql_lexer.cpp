#include "db_virtuoso/core/sql_lexer.hpp"

#include <cctype>

namespace virtuoso::core {
namespace {

bool is_ident_start(unsigned char c) {
    return std::isalpha(c) || c == '_' || c >= 0x80;
}
bool is_ident_char(unsigned char c) {
    return is_ident_start(c) || std::isdigit(c) || c == '$';
}

// Position after a dollar-quote opening tag at i ("$$" or "$tag$"), or npos.
size_t dollar_tag_end(std::string_view s, size_t i) {
    size_t j = i + 1;
    if (j < s.size() && s[j] == '$') return j + 1;
    if (j >= s.size() || !is_ident_start(static_cast<unsigned char>(s[j])))
        return std::string::npos;
    while (j < s.size() && is_ident_char(static_cast<unsigned char>(s[j])) && s[j] != '$') ++j;
    return j < s.size() && s[j] == '$' ? j + 1 : std::string::npos;
}

}  // namespace

bool Token::is_keyword(std::string_view upper) const {
    if (kind != TokenKind::Word || text.size() != upper.size()) return false;
    for (size_t i = 0; i < text.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(text[i])) != upper[i]) return false;
    return true;
}

std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> tokens;
    size_t i = 0;
    const size_t n = s.size();
    auto emit = [&](TokenKind kind, size_t start, size_t end) {
        tokens.push_back(Token{kind, s.substr(start, end - start), start});
    };
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (std::isspace(c)) {
            ++i;
        } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n') ++i;
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            int depth = 0;  // block comments nest in PostgreSQL
            do {
                if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
                    ++depth;
                    i += 2;
                } else if (i + 1 < n && s[i] == '*' && s[i + 1] == '/') {
                    --depth;
                    i += 2;
                } else {
                    ++i;
                }
            } while (i < n && depth > 0);
        } else if (c == '\'' || ((c == 'E' || c == 'e') && i + 1 < n && s[i + 1] == '\'')) {
            size_t start = i;
            bool backslash_escapes = c != '\'';
            i += backslash_escapes ? 2 : 1;
            while (i < n) {
                if (backslash_escapes && s[i] == '\\') {
                    i += 2;
                } else if (s[i] == '\'') {
                    if (i + 1 < n && s[i + 1] == '\'') {
                        i += 2;
                    } else {
                        ++i;
                        break;
                    }
                } else {
                    ++i;
                }
            }
            emit(TokenKind::String, start, std::min(i, n));
        } else if (c == '"') {
            size_t start = i++;
            while (i < n) {
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                ++i;
            }
            emit(TokenKind::QuotedIdentifier, start, std::min(i, n));
        } else if (c == '$' && i + 1 < n && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
            size_t start = i++;
            while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
            emit(TokenKind::Parameter, start, i);
        } else if (c == '$' && dollar_tag_end(s, i) != std::string::npos) {
            size_t start = i;
            size_t body = dollar_tag_end(s, i);
            std::string_view tag = s.substr(i, body - i);
            size_t close = s.find(tag, body);
            i = close == std::string::npos ? n : close + tag.size();
            emit(TokenKind::String, start, i);
        } else if (is_ident_start(c)) {
            size_t start = i;
            while (i < n && is_ident_char(static_cast<unsigned char>(s[i]))) ++i;
            emit(TokenKind::Word, start, i);
        } else if (std::isdigit(c) ||
                   (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
            size_t start = i;
            while (i < n &&
                   (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == '_'))
                ++i;
            emit(TokenKind::Number, start, i);
        } else {
            emit(TokenKind::Punctuation, i, i + 1);
            ++i;
        }
    }
    return tokens;
}

std::optional<std::string> with_concurrently(std::string_view sql, std::string *error) {
    std::vector<Token> tokens = tokenize(sql);
    size_t i = 0;
    auto fail = [&](const char *why) -> std::optional<std::string> {
        if (error) *error = why;
        return std::nullopt;
    };
    if (i >= tokens.size() || !tokens[i].is_keyword("CREATE"))
        return fail("an index definition starts with CREATE [UNIQUE] INDEX");
    ++i;
    if (i < tokens.size() && tokens[i].is_keyword("UNIQUE")) ++i;
    if (i >= tokens.size() || !tokens[i].is_keyword("INDEX"))
        return fail("an index definition starts with CREATE [UNIQUE] INDEX");
    const Token &index_kw = tokens[i];
    if (i + 1 < tokens.size() && tokens[i + 1].is_keyword("CONCURRENTLY")) return std::string(sql);
    size_t insert_at = index_kw.offset + index_kw.text.size();
    std::string out(sql.substr(0, insert_at));
    out += " CONCURRENTLY";
    out += sql.substr(insert_at);
    return out;
}

std::optional<Token> leading_word(std::string_view sql) {
    for (const Token &t : tokenize(sql)) {
        if (t.kind == TokenKind::Punctuation && t.text == "(") continue;
        if (t.kind != TokenKind::Word) return std::nullopt;
        return t;
    }
    return std::nullopt;
}

bool may_be_query(std::string_view sql) {
    return may_be_query(leading_word(sql));
}

bool may_be_query(const std::optional<Token> &first) {
    if (!first) return false;
    for (const char *keyword :
         {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE"})
        if (first->is_keyword(keyword)) return true;
    return false;
}

}  // namespace virtuoso::core
