// Hugging Face decoders (token strings -> text): ByteLevel, WordPiece, Metaspace, ByteFallback,
// Fuse, Strip, Replace, BPEDecoder and Sequence, each as the Rust crate's decode_chain: a list of
// token strings in, a list out; the caller joins the final list. Not here: CTC.
#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : find_literal(s, from)) out.append(s, pos, b - pos).append(to), pos = e;
  out.append(s, pos);
  s = std::move(out);
}

// GPT-2's byte-level characters back to bytes; a token holding any other character is kept as
// its own UTF-8 (what the Rust decoder does), and the result is repaired to valid UTF-8.
void decode_byte_level(std::vector<std::string>& tokens) {
  std::string bytes, raw;
  for (const std::string& t : tokens) {
    if (from_byte_level(t, raw))
      bytes += raw;
    else
      bytes += t;
    raw.clear();
  }
  tokens.assign(1, utf8_repair(bytes));
}

// wordpiece.rs: cleanup of spaces before punctuation and English contractions.
void wordpiece_cleanup(std::string& s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
}

DecodeFn make_wordpiece_decoder(const json& j) {
  const std::string prefix = j.value("prefix", std::string("##"));
  const bool cleanup = j.value("cleanup", true);
  return [=](std::vector<std::string>& tokens) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix.size(), prefix) == 0)
          t.erase(t.find(prefix), prefix.size());
        else
          t = " " + t;
      }
      if (cleanup) wordpiece_cleanup(t);
    }
  };
}

DecodeFn make_metaspace_decoder(const json& j) {
  const std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
  std::string scheme = j.value("prepend_scheme", std::string{});
  if (scheme.empty()) scheme = j.value("add_prefix_space", true) ? "always" : "never";
  const bool strip_first = scheme != "never";
  return [=](std::vector<std::string>& tokens) {
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_all(tokens[i], rep, i == 0 && strip_first ? "" : " ");
  };
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void decode_byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    if (utf8_find_invalid(pending) < 0)
      out.push_back(pending);
    else
      for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
    pending.clear();
  };
  for (std::string& t : tokens) {
    const int b = byte_token(t);
    if (b >= 0) {
      pending += static_cast<char>(b);
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens = std::move(out);
}

DecodeFn make_strip(const json& j, const std::string& file) {
  const std::string content = j.value("content", std::string(" "));
  int len = 0;
  if (content.empty() || utf8_decode(content, 0, len) < 0 ||
      static_cast<size_t>(len) != content.size())
    fail(file, ": decoder Strip.content must be one character");
  const size_t start = j.value("start", size_t{0}), stop = j.value("stop", size_t{0});
  return [=](std::vector<std::string>& tokens) {
    for (std::string& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start && t.compare(b, content.size(), content) == 0; ++k)
        b += content.size();
      for (size_t k = 0; k < stop && e >= b + content.size() &&
                         t.compare(e - content.size(), content.size(), content) == 0;
           ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  };
}

DecodeFn make_replace(const json& j, const std::string& file) {
  const json p = j.value("pattern", json());
  const std::string content = j.value("content", std::string{});
  if (p.contains("String") && p["String"].is_string()) {
    const std::string from = p["String"].get<std::string>();
    return [=](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) replace_all(t, from, content);
    };
  }
  if (p.contains("Regex") && p["Regex"].is_string()) {
    auto re = std::make_shared<Regex>(p["Regex"].get<std::string>(), file + ": decoder Replace");
    return [=](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) t = re->replace_all(t, content);
    };
  }
  fail(file, ": decoder Replace needs a pattern {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

DecodeFn make_decoder(const json& j, const std::string& file) {
  if (j.is_null()) return {};
  const std::string type = j.is_object() ? j.value("type", std::string{}) : "";
  if (type == "Sequence") {
    std::vector<DecodeFn> steps;
    for (const json& d : j.value("decoders", json::array()))
      if (auto f = make_decoder(d, file)) steps.push_back(std::move(f));
    return [steps](std::vector<std::string>& t) {
      for (const auto& f : steps) f(t);
    };
  }
  if (type == "ByteLevel") return decode_byte_level;
  if (type == "WordPiece") return make_wordpiece_decoder(j);
  if (type == "Metaspace") return make_metaspace_decoder(j);
  if (type == "ByteFallback") return decode_byte_fallback;
  if (type == "Fuse")
    return [](std::vector<std::string>& t) {
      std::string all;
      for (const std::string& s : t) all += s;
      t.assign(1, std::move(all));
    };
  if (type == "Strip") return make_strip(j, file);
  if (type == "Replace") return make_replace(j, file);
  if (type == "BPEDecoder") {
    const std::string suffix = j.value("suffix", std::string("</w>"));
    return [suffix](std::vector<std::string>& t) {
      for (size_t i = 0; i < t.size(); ++i) replace_all(t[i], suffix, i + 1 == t.size() ? "" : " ");
    };
  }
  fail(file, ": decoder \"", type, "\" is not supported (supported: ByteLevel, WordPiece, ",
       "Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence)");
}

}  // namespace llmkit::tokenizer::hf
