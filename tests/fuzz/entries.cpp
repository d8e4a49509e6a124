// The fuzz entry points (entries.h). File-based parsers get the bytes through a file in the temp
// directory (one per process and target), so the fuzzer drives exactly what the tools call.
#include "tests/fuzz/entries.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"
#include "llmkit/data/pairs.h"
#include "llmkit/data/shards.h"
#include "llmkit/infer/chat.h"
#include "llmkit/io/gguf.h"
#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/config_file.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/models/t5.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "llmkit/tokenizer/unicode.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "tests/common/byte_tokenizer.h"

namespace llmkit::fuzz {
namespace {

#define FUZZ_CHECK(cond)                                                                        \
  do {                                                                                          \
    if (!(cond))                                                                                \
      throw InvariantBroken(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond); \
  } while (0)

std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
std::string_view text_of(const uint8_t* data, size_t size, size_t most) {
  return as_text(data, std::min(size, most));
}

// A file holding the input; removed when the process exits normally.
class ScratchFile {
 public:
  explicit ScratchFile(const char* what)
      : path_((std::filesystem::temp_directory_path() /
               ("llmkit-fuzz-" + std::to_string(getpid()) + "-" + what))
                  .string()) {}
  ~ScratchFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  const std::string& write(const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error("cannot write " + path_);
    const size_t n = size == 0 ? 0 : std::fwrite(data, 1, size, f);
    std::fclose(f);
    if (n != size) throw std::runtime_error("short write to " + path_);
    return path_;
  }

 private:
  std::string path_;
};

// Reads every byte of every tensor (ASan reports any that lie outside the data) and checks
// the bookkeeping a successful parse promises.
void check_tensors(const io::SafetensorsFile& f) {
  unsigned sum = 0;
  for (const auto& [name, t] : f.tensors) {
    FUZZ_CHECK(t.is_contiguous());
    const size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    const auto* p = static_cast<const unsigned char*>(t.raw_data());
    for (size_t i = 0; i < nbytes; ++i) sum += p[i];
    FUZZ_CHECK(f.get(name).same(t) || f.get(name).shape() == t.shape());
  }
  volatile unsigned sink = sum;  // keep the reads
  (void)sink;
}

}  // namespace

void safetensors(const uint8_t* data, size_t size) {
  static ScratchFile file("model.safetensors");
  std::optional<io::SafetensorsFile> parsed;
  try {
    parsed = io::parse_safetensors(as_text(data, size), "fuzz.safetensors");
  } catch (const Error&) {
  }
  if (parsed) check_tensors(*parsed);
  // The mapped path must agree with the in-memory one: same success, same tensors.
  std::optional<io::SafetensorsFile> mapped;
  try {
    mapped = io::load_safetensors(file.write(data, size));
  } catch (const Error&) {
  }
  FUZZ_CHECK(parsed.has_value() == mapped.has_value());
  if (!mapped) return;
  check_tensors(*mapped);
  FUZZ_CHECK(mapped->tensors.size() == parsed->tensors.size());
  FUZZ_CHECK(mapped->metadata == parsed->metadata);
  for (size_t i = 0; i < mapped->tensors.size(); ++i) {
    FUZZ_CHECK(mapped->tensors[i].first == parsed->tensors[i].first);
    FUZZ_CHECK(mapped->tensors[i].second.shape() == parsed->tensors[i].second.shape());
  }
}

void tokenizer_json(const uint8_t* data, size_t size) {
  std::optional<tokenizer::Tokenizer> tok;
  try {
    tok = tokenizer::Tokenizer::from_json(as_text(data, size), "fuzz/tokenizer.json");
  } catch (const Error&) {
    return;
  }
  // A tokenizer that loads must encode anything and decode what it encodes (byte-level BPE
  // round-trips exactly; a char model may map unknown characters to <unk>).
  const std::string sample = "Hello, world! 안녕하세요 \xF0\x9F\x98\x80 \t\n 123";
  // A Hugging Face pipeline (any tokenizer.json that is not GPT-2's byte-level BPE or our char
  // model) may refuse a text as tokenizers does (a Unigram without unk_id meeting an unknown
  // character) and need not be lossless (a WordPiece lowercases); so may a char model without
  // an unk_token.
  const bool builtin = tok->parts().pipeline.empty();
  for (const std::string_view text : {std::string_view(sample), text_of(data, size, 200)}) {
    std::vector<int32_t> ids;
    try {
      ids = tok->encode(text);
    } catch (const Error&) {  // a char model without [UNK] cannot encode unknown characters
      FUZZ_CHECK(!builtin || tok->model() == tokenizer::Model::kChar);
      continue;
    }
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
    const std::string back = tok->decode(ids);
    // Byte-level BPE is lossless on valid UTF-8 (the fuzzed text may hold jamo that compose).
    if (text == sample && builtin && tok->model() == tokenizer::Model::kBpe)
      FUZZ_CHECK(back == sample);
  }
  for (int32_t id = 0; id < std::min(tok->vocab_size(), 64); ++id) (void)tok->id_to_token(id);
  // What it saves loads again as the same tokenizer.
  const std::string saved = tok->to_json();
  const tokenizer::Tokenizer again = tokenizer::Tokenizer::from_json(saved, "saved");
  FUZZ_CHECK(again.to_json() == saved);
}

void token_shard(const uint8_t* data, size_t size) {
  static ScratchFile file("train.bin");
  std::optional<data::TokenShard> shard;
  try {
    shard = data::TokenShard::open(file.write(data, size));
  } catch (const Error&) {
    return;
  }
  FUZZ_CHECK(shard->size() >= 0 && shard->vocab_size() > 0);
  const int64_t n = std::min<int64_t>(shard->size(), 1 << 16);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  shard->read(0, n, ids.data());
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < shard->vocab_size());
  if (shard->size() > 0) {
    FUZZ_CHECK(shard->at(0) == ids[0]);
    const int32_t last = shard->at(shard->size() - 1);
    FUZZ_CHECK(last >= 0 && last < shard->vocab_size());
  }
}

void config_json(const uint8_t* data, size_t size) {
  static ScratchFile file("config.json");
  const std::string& path = file.write(data, size);
  // As `llmkit train --config` reads it: the whole file, its "model" and "train" objects.
  nlohmann::json cfg;
  try {
    cfg = io::read_json_file(path);
  } catch (const Error&) {
    return;
  }
  // As a model directory's config.json is read (its "model" object when it has one).
  nlohmann::json model = models::read_config_json(path);
  std::optional<train::TrainConfig> tc;
  try {
    tc = train::TrainConfig::from_json(
        cfg.is_object() ? cfg.value("train", nlohmann::json::object()) : cfg);
  } catch (const Error&) {
  }
  // Every family reads the model object (the arch field picks one in training; trying all four
  // covers each reader with every input).
  auto attempt = [](auto&& read) {
    try {
      read();
    } catch (const Error&) {
    }
  };
  attempt([&] { (void)models::GPTConfig::from_json(model); });
  attempt([&] { (void)models::BertConfig::from_json(model); });
  attempt([&] { (void)models::T5Config::from_json(model); });
  attempt([&] { (void)models::RNNLMConfig::from_json(model); });
  if (tc) attempt([&] { (void)train::task_special_tokens(model, *tc); });
}

void pairs_tsv(const uint8_t* data, size_t size) {
  static ScratchFile file("pairs.tsv");
  std::vector<data::TextPair> pairs;
  try {
    pairs = data::read_pairs(file.write(data, size));
  } catch (const Error&) {
    return;
  }
  // Every pair read writes back (escaped) as a line that reads as the same pair.
  for (const data::TextPair& p : pairs) {
    FUZZ_CHECK(!p.source.empty() && !p.target.empty());
    data::TextPair back;
    std::string err;
    FUZZ_CHECK(data::parse_pair_line(data::escape_tsv(p.source) + "\t" + data::escape_tsv(p.target),
                                     back, &err));
    FUZZ_CHECK(back.source == p.source && back.target == p.target);
    (void)data::is_held_out(p, 0.1);
  }
}

namespace {

// Feeds `text` to a StopMatcher in pieces whose lengths come from `cuts`; the pieces shown
// must add up to the text cut at the first stop string, and never show what is later cut.
void check_stop_matcher(std::string_view text, std::string_view cuts) {
  const std::vector<std::string> stops = infer::chat_stop_strings();
  size_t at = text.size();
  for (const std::string& s : stops) at = std::min(at, text.find(s));
  const std::string_view expected = text.substr(0, at);
  infer::StopMatcher m(stops);
  std::string shown;
  size_t pos = 0;
  for (size_t k = 0; pos < text.size(); ++k) {
    const size_t len = cuts.empty() ? 1 : 1 + static_cast<uint8_t>(cuts[k % cuts.size()]) % 8;
    shown += m.push(text.substr(pos, len));
    pos += std::min(len, text.size() - pos);
    FUZZ_CHECK(expected.starts_with(shown));
  }
  shown += m.finish();
  FUZZ_CHECK(shown == expected);
}

}  // namespace

void chat_transcript(const uint8_t* data, size_t size) {
  const std::string_view text = as_text(data, size);
  check_stop_matcher(text, text.substr(0, std::min<size_t>(size, 16)));
  infer::Conversation c;
  try {
    c = infer::parse_transcript(text, "fuzz.txt");
  } catch (const Error&) {
    return;
  }
  const std::string rendered = c.render();
  FUZZ_CHECK(infer::parse_transcript(rendered) == c);
  if (c.turns.empty()) return;
  // Trimming to a budget from the input: keeps the last turn, fits, drops the fewest it can.
  const auto& tok = llmkit::testing::byte_tokenizer();
  const int64_t budget = static_cast<int64_t>(size % 97) * 8;
  try {
    const infer::ChatPrompt p = infer::fit_prompt(c, tok, budget);
    FUZZ_CHECK(static_cast<int64_t>(p.ids.size()) <= budget);
    FUZZ_CHECK(p.first_turn < c.turns.size());
    FUZZ_CHECK(tok.decode(p.ids) == c.prompt(p.first_turn));
    if (p.first_turn > 0) {
      FUZZ_CHECK(static_cast<int64_t>(tok.encode(c.prompt(p.first_turn - 1)).size()) > budget);
    }
  } catch (const Error&) {
    // Only when even the last turn alone does not fit.
    FUZZ_CHECK(static_cast<int64_t>(tok.encode(c.prompt(c.turns.size() - 1)).size()) > budget);
  }
}

namespace {

// Two readings of GGUF metadata values are the same.
bool same_value(const io::GgufValue& a, const io::GgufValue& b) {
  if (a.type != b.type || a.i != b.i || a.u != b.u || a.b != b.b || a.s != b.s ||
      a.array.size() != b.array.size())
    return false;
  if (!(a.f == b.f || (a.f != a.f && b.f != b.f))) return false;  // NaN equals NaN here
  if (a.type == io::GgufValue::Type::ARRAY && a.array_type != b.array_type) return false;
  for (size_t k = 0; k < a.array.size(); ++k)
    if (!same_value(a.array[k], b.array[k])) return false;
  return true;
}

bool same_gguf(const io::GgufFile& a, const io::GgufFile& b) {
  if (a.metadata.size() != b.metadata.size() || a.tensors.size() != b.tensors.size()) return false;
  for (size_t k = 0; k < a.metadata.size(); ++k)
    if (a.metadata[k].first != b.metadata[k].first ||
        !same_value(a.metadata[k].second, b.metadata[k].second))
      return false;
  for (size_t k = 0; k < a.tensors.size(); ++k) {
    const io::GgufTensor &x = a.tensors[k], &y = b.tensors[k];
    if (x.name != y.name || x.ne != y.ne || x.type != y.type || x.nbytes != y.nbytes ||
        (x.nbytes > 0 && std::memcmp(x.data, y.data, x.nbytes) != 0))
      return false;
  }
  return true;
}

// Reads every tensor byte, dequantises what can be, and exercises the value accessors.
void check_gguf(const io::GgufFile& f) {
  unsigned sum = 0;
  for (const io::GgufTensor& t : f.tensors) {
    FUZZ_CHECK(f.find_tensor(t.name) == &t);
    FUZZ_CHECK(t.offset % f.alignment == 0);
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    if (!kernels::ggml_can_dequantize(t.type)) continue;
    const Tensor x = f.to_f32(t);
    FUZZ_CHECK(x.shape() == t.shape() && x.numel() == t.numel());
    if (x.numel() > 0) sum += static_cast<unsigned>(x.data<float>()[x.numel() - 1] != 0);
  }
  for (const auto& kv : f.metadata) {
    const io::GgufValue& v = kv.second;  // a plain reference: clang 14 cannot capture bindings
    FUZZ_CHECK(f.find(kv.first) == &v);
    auto attempt = [](auto&& read) {
      try {
        read();
      } catch (const Error&) {
      }
    };
    attempt([&] { (void)v.as_int(); });
    attempt([&] { (void)v.as_float(); });
    attempt([&] { (void)v.as_strings(); });
    attempt([&] { (void)v.as_floats(); });
    attempt([&] { (void)v.as_ints(); });
  }
  volatile unsigned sink = sum;
  (void)sink;
}

}  // namespace

void gguf(const uint8_t* data, size_t size) {
  static ScratchFile file("model.gguf");
  static ScratchFile again("again.gguf");
  std::optional<io::GgufFile> parsed, mapped;
  try {
    parsed = io::parse_gguf(as_text(data, size), "fuzz.gguf");
  } catch (const Error&) {
  }
  try {
    mapped = io::load_gguf(file.write(data, size));
  } catch (const Error&) {
  }
  FUZZ_CHECK(parsed.has_value() == mapped.has_value());
  if (!parsed) return;
  FUZZ_CHECK(same_gguf(*parsed, *mapped));
  check_gguf(*parsed);
  check_gguf(*mapped);
  // What was read writes back (save_gguf) and reads again as the same file. Not for huge
  // alignments (legal up to 2^31): padding to them would write gigabytes per input.
  if (parsed->alignment > (1u << 16)) return;
  std::vector<io::GgufTensorData> tensors;
  for (const io::GgufTensor& t : parsed->tensors)
    tensors.push_back(
        {t.name, t.ne, t.type, std::string_view(reinterpret_cast<const char*>(t.data), t.nbytes)});
  io::save_gguf(again.path(), parsed->metadata, tensors, parsed->alignment);
  FUZZ_CHECK(same_gguf(*parsed, io::load_gguf(again.path())));
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"safetensors", safetensors},
      {"tokenizer_json", tokenizer_json},
      {"token_shard", token_shard},
      {"config_json", config_json},
      {"pairs_tsv", pairs_tsv},
      {"chat_transcript", chat_transcript},
      {"gguf", gguf},
      {"chat_template", chat_template},
  };
  return all;
}

}  // namespace llmkit::fuzz
