// Hugging Face post-processors, applied to one sequence's ids when EncodeOptions asks for
// add_special_tokens: TemplateProcessing (its "single" template), BertProcessing and
// RobertaProcessing ([CLS] ids [SEP]), ByteLevel (offsets only: nothing to do on ids) and
// Sequence. Not here: pair templates and type ids (llmkit encodes one sequence at a time).
#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"

namespace llmkit::tokenizer::hf {

namespace {

// [token, id] as BertProcessing stores cls and sep; the id must be the vocabulary's.
int32_t named_id(const json& j, const char* key, const std::string& file, const Vocab& vocab) {
  const json v = j.value(key, json());
  if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer())
    fail(file, ": post_processor.", key, " must be [token, id]");
  const auto id = v[1].get<int64_t>();
  if (id < 0 || id >= static_cast<int64_t>(vocab.tokens->size()))
    fail(file, ": post_processor.", key, " id ", id, " is outside the vocabulary");
  return static_cast<int32_t>(id);
}

PostProcessFn make_template(const json& j, const std::string& file, const Vocab& vocab) {
  const json specials = j.value("special_tokens", json::object());
  std::vector<std::vector<int32_t>> parts;  // empty vector = the sequence itself
  const json single = j.value("single", json());
  if (!single.is_array()) fail(file, ": post_processor TemplateProcessing.single must be a list");
  for (const json& item : single) {
    if (item.contains("Sequence")) {
      if (item["Sequence"].value("id", std::string("A")) != "A")
        fail(file, ": TemplateProcessing.single may only use sequence A");
      parts.emplace_back();
      continue;
    }
    const std::string name = item.contains("SpecialToken")
                                 ? item["SpecialToken"].value("id", std::string{})
                                 : std::string{};
    if (name.empty() || !specials.contains(name))
      fail(file, ": TemplateProcessing.single item ", item.dump(),
           " is neither a Sequence nor a SpecialToken listed in special_tokens");
    std::vector<int32_t> ids;
    for (const json& id : specials[name].value("ids", json::array())) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= static_cast<int64_t>(vocab.tokens->size()))
        fail(file, ": TemplateProcessing special token \"", name, "\" has a bad id ", id.dump());
      ids.push_back(id.get<int32_t>());
    }
    if (ids.empty()) fail(file, ": TemplateProcessing special token \"", name, "\" has no ids");
    parts.push_back(std::move(ids));
  }
  return [parts](std::vector<int32_t>& ids) {
    std::vector<int32_t> out;
    for (const auto& p : parts)
      out.insert(out.end(), p.empty() ? ids.begin() : p.begin(), p.empty() ? ids.end() : p.end());
    ids = std::move(out);
  };
}

}  // namespace

PostProcessFn make_post_processor(const json& j, const std::string& file, const Vocab& vocab) {
  if (j.is_null()) return {};
  const std::string type = j.is_object() ? j.value("type", std::string{}) : "";
  if (type == "Sequence") {
    std::vector<PostProcessFn> steps;
    for (const json& p : j.value("processors", json::array()))
      if (auto f = make_post_processor(p, file, vocab)) steps.push_back(std::move(f));
    return [steps](std::vector<int32_t>& ids) {
      for (const auto& f : steps) f(ids);
    };
  }
  if (type == "ByteLevel") return [](std::vector<int32_t>&) {};
  if (type == "TemplateProcessing") return make_template(j, file, vocab);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const int32_t cls = named_id(j, "cls", file, vocab), sep = named_id(j, "sep", file, vocab);
    return [cls, sep](std::vector<int32_t>& ids) {
      ids.insert(ids.begin(), cls);
      ids.push_back(sep);
    };
  }
  fail(file, ": post_processor \"", type, "\" is not supported (supported: TemplateProcessing, ",
       "BertProcessing, RobertaProcessing, ByteLevel, Sequence)");
}

}  // namespace llmkit::tokenizer::hf
