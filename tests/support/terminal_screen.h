#pragma once
// What a terminal shows after some output: its rows, as a VT100-style terminal draws them.
// Understands what the launcher writes to a terminal: text, \n (with or without the \r a
// pseudo-terminal adds), \r, and the CSI sequences cursor up (A), erase below (J) and erase to
// the end of the line (K). Each byte is one column.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace accel::test {

inline std::vector<std::string> terminal_screen(std::string_view bytes) {
  std::vector<std::string> rows{""};
  std::size_t row = 0, column = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\n') {
      ++row;
      column = 0;
      if (row == rows.size()) rows.emplace_back();
    } else if (c == '\r') {
      column = 0;
    } else if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      std::size_t end = i + 2;
      while (end < bytes.size() && bytes[end] >= '0' && bytes[end] <= '9') ++end;
      if (end == bytes.size()) break;
      const std::size_t count = end == i + 2 ? 1 : std::stoul(std::string(bytes.substr(i + 2, end - i - 2)));
      switch (bytes[end]) {
        case 'A': row -= std::min(count, row); break;
        case 'J': rows.resize(row + 1); [[fallthrough]];
        case 'K': if (rows[row].size() > column) rows[row].resize(column); break;
        default: break;
      }
      i = end;
    } else {
      std::string& line = rows[row];
      if (line.size() < column) line.resize(column, ' ');
      if (column < line.size()) line[column] = c;
      else line += c;
      ++column;
    }
  }
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  return rows;
}

}  // namespace accel::test
