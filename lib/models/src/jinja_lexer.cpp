// The chat template lexer: text and tags as jinja2's lexer splits them with the environment
// transformers compiles chat templates in (trim_blocks and lstrip_blocks on, newlines as "\n",
// one trailing newline dropped).
#include "accel/core/text.h"
#include "jinja_ast.h"
#include "jinja_utf8.h"

#include <cctype>
#include <cstring>

namespace accel::models::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& message) {
  throw TemplateError("template line " + std::to_string(line) + ": " + message);
}

// The whitespace Python's str.rstrip() and the regex \s remove, as a byte count from the end.
std::size_t trailing_space(std::string_view text) {
  std::size_t i = 0, kept = 0;
  while (i < text.size())
    if (!utf8::is_space(utf8::next(text, i))) kept = i;
  return text.size() - kept;
}

std::size_t leading_space(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t next = i;
    if (!utf8::is_space(utf8::next(text, next))) break;
    i = next;
  }
  return i;
}

std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // jinja2's keep_trailing_newline=False
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2 applies it.
std::string unescape(std::string_view body, int line) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out += body[i];
      continue;
    }
    const char c = body[++i];
    const auto hex = [&](std::size_t digits) {
      std::uint32_t cp = 0;
      for (std::size_t k = 1; k <= digits; ++k) {
        const char h = i + k < body.size() ? body[i + k] : '\0';
        if (!std::isxdigit(static_cast<unsigned char>(h))) fail(line, "truncated \\" + std::string(1, c) + " escape in a string");
        cp = cp * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      i += digits;
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail(line, "a string escapes a code point UTF-8 cannot hold");
      utf8::append(out, cp);
    };
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\n': break;  // a backslash before a newline continues the line
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      case 'N': fail(line, "\\N{...} escapes in strings are not supported");
      default:
        if (c >= '0' && c <= '7') {
          std::uint32_t cp = static_cast<std::uint32_t>(c - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            cp = cp * 8 + static_cast<std::uint32_t>(body[++i] - '0');
          utf8::append(out, cp);
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& source) : src_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const auto open = find_tag(pos_);
      std::string text = src_.substr(pos_, open - pos_);
      const int text_line = line_;
      count_lines(pos_, open);
      if (open == src_.size()) {
        emit_text(std::move(text), text_line);
        break;
      }
      const char kind = src_[open + 1];
      const char modifier = open + 2 < src_.size() ? src_[open + 2] : '\0';
      strip_before_tag(text, kind, modifier);
      emit_text(std::move(text), text_line);
      pos_ = open + 2 + (modifier == '-' || modifier == '+' ? 1 : 0);
      if (kind == '#') {
        skip_comment(open);
      } else {
        lex_tag(kind);
      }
    }
    tokens_.push_back({Token::Type::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  std::size_t find_tag(std::size_t from) const {
    for (auto at = src_.find('{', from); at != std::string::npos; at = src_.find('{', at + 1))
      if (at + 1 < src_.size() && std::strchr("{%#", src_[at + 1]) && src_[at + 1] != '\0') return at;
    return src_.size();
  }

  void count_lines(std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) line_ += src_[i] == '\n';
  }

  void emit_text(std::string text, int line) {
    if (!text.empty()) tokens_.push_back({Token::Type::kText, std::move(text), line});
  }

  // {%- / {{- strip all whitespace before the tag; lstrip_blocks strips the blanks that open
  // the tag's line, for block tags and comments unless written {%+.
  void strip_before_tag(std::string& text, char kind, char modifier) const {
    if (modifier == '-') {
      text.resize(text.size() - trailing_space(text));
    } else if (modifier != '+' && kind != '{') {
      const auto newline = text.rfind('\n');
      const std::size_t line_start = newline == std::string::npos ? 0 : newline + 1;
      if (line_start == 0 && !line_starting_) return;
      const std::string_view rest = std::string_view(text).substr(line_start);
      if (!rest.empty() && leading_space(rest) == rest.size()) text.resize(line_start);
    }
  }

  // After a closing delimiter: "-" strips the whitespace that follows; a block tag or comment
  // drops one newline (trim_blocks) unless written +%}.
  void after_close(bool strip, bool trims_newline) {
    const auto start = pos_;
    if (strip) {
      pos_ += leading_space(std::string_view(src_).substr(pos_));
    } else if (trims_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    count_lines(start, pos_);
    line_starting_ = pos_ > start && src_[pos_ - 1] == '\n';
  }

  void skip_comment(std::size_t open) {
    const auto end = src_.find("#}", pos_);
    if (end == std::string::npos) fail(line_, "a comment opened here is never closed with #}");
    const bool strip = end > open + 2 && src_[end - 1] == '-';
    const bool keep_newline = end > open + 2 && src_[end - 1] == '+';
    count_lines(pos_, end);
    pos_ = end + 2;
    after_close(strip, !keep_newline);
  }

  // The closing delimiter at pos_ ("-%}", "+%}", "%}" or "-}}", "}}"), or 0 when there is none.
  std::size_t closing_at(char kind) const {
    const char* const close = kind == '%' ? "%}" : "}}";
    if (src_.compare(pos_, 2, close) == 0) return 2;
    if ((src_[pos_] == '-' || (kind == '%' && src_[pos_] == '+')) && src_.compare(pos_ + 1, 2, close) == 0) return 3;
    return 0;
  }

  void lex_tag(char kind) {
    const int open_line = line_;
    tokens_.push_back({kind == '%' ? Token::Type::kBlockBegin : Token::Type::kVariableBegin, "", line_});
    int balance = 0;
    for (;;) {
      const auto start = pos_;
      pos_ += leading_space(std::string_view(src_).substr(pos_));
      count_lines(start, pos_);
      if (pos_ >= src_.size())
        fail(open_line, std::string("a tag opened here is never closed with ") + (kind == '%' ? "%}" : "}}"));
      if (const auto n = balance == 0 ? closing_at(kind) : 0) {
        const char sign = n == 3 ? src_[pos_] : '\0';
        tokens_.push_back({kind == '%' ? Token::Type::kBlockEnd : Token::Type::kVariableEnd, "", line_});
        pos_ += n;
        after_close(sign == '-', kind == '%' && sign != '+');
        return;
      }
      lex_token(balance);
    }
  }

  void lex_token(int& balance) {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const auto start = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      tokens_.push_back({Token::Type::kName, src_.substr(start, pos_ - start), line_});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number();
    } else if (c == '\'' || c == '"') {
      lex_string(c);
    } else {
      lex_operator(balance);
    }
  }

  void lex_number() {
    const auto digits = [&] {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
                                    (src_[pos_] == '_' && pos_ + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))))
        ++pos_;
    };
    const auto start = pos_;
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      ++pos_;
      digits();
      is_float = true;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      auto after = pos_ + 1;
      if (after < src_.size() && (src_[after] == '+' || src_[after] == '-')) ++after;
      if (after < src_.size() && std::isdigit(static_cast<unsigned char>(src_[after]))) {
        pos_ = after;
        digits();
        is_float = true;
      }
    }
    std::string text;
    for (auto i = start; i < pos_; ++i)
      if (src_[i] != '_') text += src_[i];
    tokens_.push_back({is_float ? Token::Type::kFloat : Token::Type::kInteger, text, line_});
  }

  void lex_string(char quote) {
    const int line = line_;
    auto i = pos_ + 1;
    while (i < src_.size() && src_[i] != quote) i += src_[i] == '\\' ? 2 : 1;
    if (i >= src_.size()) fail(line, "a string opened here is never closed");
    const auto body = std::string_view(src_).substr(pos_ + 1, i - pos_ - 1);
    tokens_.push_back({Token::Type::kString, unescape(body, line), line});
    count_lines(pos_, i);
    pos_ = i + 1;
  }

  void lex_operator(int& balance) {
    static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back({Token::Type::kOperator, op, line_});
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (!std::strchr("+-/*%~[](){}<>=.:|,;", c) || c == '\0')
      fail(line_, "unexpected character " + text::quote(src_.substr(pos_, 1)) + " in a tag");
    if (c == '(' || c == '[' || c == '{') ++balance;
    if ((c == ')' || c == ']' || c == '}') && balance > 0) --balance;
    tokens_.push_back({Token::Type::kOperator, std::string(1, c), line_});
    ++pos_;
  }

  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace accel::models::jinja
