// Labelled text files (labelled.h): TSV and JSONL readers with errors that name the file and
// line. Not here: label ids and tokenising (train/task_classify.cpp).
#include "llmkit/data/labelled.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::data {

namespace {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    int len = 1;
    if (tokenizer::utf8_decode(s, i, len) < 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

LabelledExample tsv_line(const std::string& line, const std::string& where) {
  const size_t tab = line.rfind('\t');
  LLMKIT_CHECK(tab != std::string::npos, where, ": no tab between the text and the label");
  LabelledExample e{line.substr(0, tab), trim(line.substr(tab + 1))};
  LLMKIT_CHECK(!e.label.empty(), where, ": empty label");
  return e;
}

LabelledExample jsonl_line(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    fail(where, ": not valid JSON");
  }
  LLMKIT_CHECK(j.is_object(), where, ": not a JSON object");
  LLMKIT_CHECK(j.contains("text") && j["text"].is_string(), where, ": no string field \"text\"");
  LLMKIT_CHECK(j.contains("label"), where, ": no field \"label\"");
  const nlohmann::json& l = j["label"];
  LabelledExample e;
  e.text = j["text"].get<std::string>();
  if (l.is_string())
    e.label = l.get<std::string>();
  else if (l.is_number_integer())
    e.label = std::to_string(l.get<int64_t>());
  else if (l.is_number())
    e.label = l.dump();
  else
    fail(where, ": \"label\" must be a string or a number, got ", l.dump());
  LLMKIT_CHECK(!e.label.empty(), where, ": empty label");
  return e;
}

}  // namespace

std::vector<LabelledExample> read_labelled(const std::string& path) {
  namespace fs = std::filesystem;
  LLMKIT_CHECK(fs::is_regular_file(path), "data: '", path, "' not found");
  const std::string ext = fs::path(path).extension().string();
  const bool tsv = ext == ".tsv" || ext == ".txt";
  LLMKIT_CHECK(tsv || ext == ".jsonl" || ext == ".json", "data: '", path,
               "' is neither .tsv nor .jsonl (text<TAB>label or {\"text\", \"label\"} lines)");
  const std::string all = tokenizer::read_file(path);
  std::vector<LabelledExample> out;
  size_t start = 0, line_no = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    std::string line = all.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    const std::string where = path + ":" + std::to_string(line_no);
    LLMKIT_CHECK(valid_utf8(line), where, ": not valid UTF-8");
    if (tsv && out.empty() && line == "text\tlabel") continue;  // the header
    out.push_back(tsv ? tsv_line(line, where) : jsonl_line(line, where));
    out.back().line = line_no;
  }
  LLMKIT_CHECK(!out.empty(), "data: '", path, "' holds no examples");
  return out;
}

std::vector<std::string> label_names(const std::vector<LabelledExample>& examples) {
  std::set<std::string> s;
  for (const auto& e : examples) s.insert(e.label);
  return {s.begin(), s.end()};
}

double label_value(const LabelledExample& e, const std::string& path, size_t line) {
  char* end = nullptr;
  const double v = std::strtod(e.label.c_str(), &end);
  LLMKIT_CHECK(!e.label.empty() && end == e.label.c_str() + e.label.size() && std::isfinite(v),
               path, ":", line, ": label '", e.label, "' is not a number (regression)");
  return v;
}

}  // namespace llmkit::data
