#include <catch2/catch.hpp>

#include <map>
#include <sstream>

#include "body.h"
#include "support/temp_dir.h"

namespace {

using accel::batch::detail::BodyKey;
using accel::batch::detail::KeyUse;

struct DocRow {
  std::string completions, chat, treatment;
};

// The rows of docs/batch.md's body key table: "| `key` | yes | no | treatment |".
std::map<std::string, DocRow> documented_keys() {
  const std::string doc = accel::test::slurp(ACCEL_BATCH_DOC);
  REQUIRE_FALSE(doc.empty());
  std::map<std::string, DocRow> rows;
  std::istringstream in(doc);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(cell.substr(1, cell.size() - 2));
    if (cells.size() != 4 || (cells[1] != "yes" && cells[1] != "no")) continue;  // another table
    rows[cells[0].substr(1, cells[0].size() - 2)] = DocRow{cells[1], cells[2], cells[3]};
  }
  return rows;
}

std::string treatment_of(const BodyKey& key) {
  switch (key.use) {
    case KeyUse::kUsed: return "used";
    case KeyUse::kChat: return "kept for the chat template";
    case KeyUse::kIgnored: return "ignored";
    case KeyUse::kNeutralOnly: break;
  }
  std::string values;
  for (const auto& value : key.neutral) values += (values.empty() ? "`" : " or `") + value.dump() + "`";
  return "only " + (values.empty() ? std::string("`null`") : values);
}

}  // namespace

TEST_CASE("docs/batch.md lists every body key with the endpoints and treatment the reader applies", "[batch][docs]") {
  auto documented = documented_keys();
  for (const auto& key : accel::batch::detail::body_keys()) {
    const std::string name(key.name);
    INFO("body key " << name);
    REQUIRE(documented.count(name) == 1);
    const DocRow& row = documented[name];
    CHECK(row.completions == (key.completions ? "yes" : "no"));
    CHECK(row.chat == (key.chat ? "yes" : "no"));
    CHECK_THAT(row.treatment, Catch::StartsWith(treatment_of(key)));
    documented.erase(name);
  }
  for (const auto& [name, row] : documented) FAIL("docs/batch.md documents body key " << name << ", which the reader does not know");
}
