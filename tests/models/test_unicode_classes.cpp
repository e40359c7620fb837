// The pre-tokenizer's character classes come from the generated Unicode tables
// (lib/models/src/unicode_class_ranges.inc), not from the system's ICU: code points added in
// Unicode 15.1, 16.0 and 17.0 classify as the Unicode Character Database says, and every code
// point classifies as node's own regular expressions do when node has the same Unicode version.
#include "test_helpers.h"
#include "unicode_classes.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

using accel::models::detail::char_class;
using accel::models::detail::CharClass;
using accel::models::detail::unicode_version;
using accel::models::testing::run_command;
using accel::test::TempDir;

TEST_CASE("code points of recent Unicode versions have their UnicodeData.txt classes",
          "[models][unicode]") {
  struct Expected {
    std::int32_t cp;
    CharClass cls;
  };
  // General categories from UnicodeData.txt of the version that added each code point.
  const Expected recent[] = {
      {0x2EBF0, CharClass::kLetter},  // 15.1: CJK Unified Ideographs Extension I, Lo
      {0x2EE5D, CharClass::kLetter},  // 15.1: its last ideograph
      {0x31EF, CharClass::kOther},    // 15.1: CJK STROKE HXG, So
      {0x2FFC, CharClass::kOther},    // 15.1: IDEOGRAPHIC DESCRIPTION CHARACTER SURROUND FROM RIGHT, So
      {0x10D40, CharClass::kNumber},  // 16.0: GARAY DIGIT ZERO, Nd
      {0x10D50, CharClass::kLetter},  // 16.0: GARAY CAPITAL LETTER A, Lu
      {0x16D70, CharClass::kNumber},  // 16.0: KIRAT RAI DIGIT ZERO, Nd
      {0x11BC0, CharClass::kLetter},  // 16.0: SUNUWAR LETTER DEVI, Lo
      {0x1CCF0, CharClass::kNumber},  // 16.0: OUTLINED DIGIT ZERO, Nd
      {0x105C0, CharClass::kLetter},  // 16.0: TODHRI LETTER A, Lo
      {0x323B0, CharClass::kLetter},  // 17.0: CJK Unified Ideographs Extension J, Lo
      {0x10940, CharClass::kLetter},  // 17.0: SIDETIC LETTER N01, Lo
  };
  for (const auto& e : recent) {
    INFO("U+" << std::hex << e.cp);
    CHECK(char_class(e.cp) == e.cls);
  }
  // Long-standing ones, and what is never a letter, number or space.
  CHECK(char_class('a') == CharClass::kLetter);
  CHECK(char_class(0x0663) == CharClass::kNumber);  // ARABIC-INDIC DIGIT THREE
  CHECK(char_class(0x2166) == CharClass::kNumber);  // ROMAN NUMERAL SEVEN, Nl
  CHECK(char_class(0x0085) == CharClass::kSpace);   // NEXT LINE: White_Space though Cc
  CHECK(char_class(0x3000) == CharClass::kSpace);
  CHECK(char_class(0x200B) == CharClass::kOther);  // ZERO WIDTH SPACE is Cf, not White_Space
  CHECK(char_class(0xFEFF) == CharClass::kOther);
  CHECK(char_class(0x0378) == CharClass::kOther);  // unassigned
  CHECK(char_class(0x10FFFF) == CharClass::kOther);
  CHECK(char_class(0x110000) == CharClass::kOther);
  CHECK(char_class(-1) == CharClass::kOther);  // an invalid UTF-8 byte
}

TEST_CASE("every code point classifies as node's regular expressions do", "[models][unicode][node]") {
  if (run_command("node --version").status != 0) {
    WARN("SKIPPED: node is not installed; the Unicode classes are not compared with V8's");
    return;
  }
  TempDir dir("unicode");
  const auto out = dir.path("classes.bin");
  const auto script = std::string(ACCEL_SOURCE_DIR) + "/scripts/unicode-classes-reference.mjs";
  const auto ran = run_command("node " + script + " " + out);
  INFO(ran.output);
  REQUIRE(ran.status == 0);
  std::ifstream in(out, std::ios::binary);
  std::string node_version;
  std::getline(in, node_version);
  const std::string classes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  REQUIRE(classes.size() == 0x110000);
  if (std::string(unicode_version()).rfind(node_version + ".", 0) != 0) {
    WARN("SKIPPED: node has Unicode " << node_version << ", the tables " << unicode_version());
    return;
  }
  std::size_t mismatches = 0;
  std::string first;
  for (std::int32_t cp = 0; cp < 0x110000; ++cp) {
    const char ours = "OLNS"[static_cast<int>(char_class(cp))];
    if (ours != classes[static_cast<std::size_t>(cp)] && ++mismatches <= 5) {
      char line[64];
      std::snprintf(line, sizeof line, "U+%04X: ours %c, node %c\n", static_cast<unsigned>(cp), ours,
                    classes[static_cast<std::size_t>(cp)]);
      first += line;
    }
  }
  INFO("first differences:\n" << first);
  CHECK(mismatches == 0);
}
