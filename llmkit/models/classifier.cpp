// Task heads on a pretrained body (classifier.h): Hugging Face's *ForSequenceClassification and
// *ForTokenClassification forward passes and losses, and the config.json fields that describe a
// head. Not here: loading a classifier directory (load.cpp), training (train/finetune.cpp).
#include "llmkit/models/classifier.h"

#include <nlohmann/json.hpp>

namespace llmkit::models {

using nlohmann::json;

namespace {

// The keys a head adds to config.json (stripped before the body's config is read).
// "llmkit_finetune" records how an adapter directory was trained (load.cpp reads its method).
const char* const kHeadKeys[] = {"id2label",     "label2id",    "num_labels",
                                 "problem_type", "llmkit_head", "llmkit_finetune"};

}  // namespace

void HeadConfig::validate(const std::string& arch) const {
  LLMKIT_CHECK(task == "sequence" || task == "token", "head: task '", task,
               "' is not sequence or token");
  LLMKIT_CHECK(problem_type == "single_label_classification" || problem_type == "regression",
               "head: problem_type '", problem_type,
               "' is not single_label_classification or regression");
  LLMKIT_CHECK(!labels.empty(), "head: no labels (id2label is empty)");
  if (regression()) {
    LLMKIT_CHECK(labels.size() == 1, "head: regression has one output, got ", labels.size(),
                 " labels");
    LLMKIT_CHECK(task == "sequence", "head: regression needs task sequence");
  } else {
    LLMKIT_CHECK(labels.size() >= 2, "head: classification needs at least 2 labels, got ",
                 labels.size());
  }
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "head: dropout ", dropout, " outside [0, 1)");
  const bool encoder = arch == "bert";
  LLMKIT_CHECK(encoder || arch == "gpt" || arch == "llama", "head: arch '", arch,
               "' cannot take a classification head (bert, gpt, llama)");
  if (task == "sequence") {
    if (encoder)
      LLMKIT_CHECK(pooling == "cls" || pooling == "mean", "head: pooling '", pooling,
                   "' for bert is not cls or mean");
    else
      LLMKIT_CHECK(pooling == "last", "head: pooling '", pooling, "' for ", arch,
                   " is not last (decoders read the last real token)");
  }
}

void HeadConfig::to_json(json& config) const {
  json id2label = json::object(), label2id = json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = i;
  }
  config["id2label"] = id2label;
  config["label2id"] = label2id;
  config["num_labels"] = labels.size();
  config["problem_type"] = problem_type;
  config["llmkit_head"] = {{"task", task}, {"pooling", pooling}, {"dropout", dropout}};
}

HeadConfig HeadConfig::from_json(const json& config, const std::string& arch) {
  HeadConfig h;
  LLMKIT_CHECK(config.is_object(), "head: config is not a JSON object");
  h.pooling = arch == "bert" ? "cls" : "last";
  const auto it = config.find("id2label");
  LLMKIT_CHECK(it != config.end() && it->is_object() && !it->empty(),
               "head: config.json has no id2label object (not a classifier)");
  h.labels.resize(it->size());
  std::vector<bool> seen(it->size(), false);
  for (const auto& [k, v] : it->items()) {
    size_t pos = 0;
    long long id = -1;
    try {
      id = std::stoll(k, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    LLMKIT_CHECK(pos == k.size() && id >= 0 && id < static_cast<long long>(h.labels.size()) &&
                     !seen[id] && v.is_string(),
                 "head: id2label entry \"", k, "\": ", v.dump(),
                 " is not an id in 0..num_labels-1 with a label name");
    seen[id] = true;
    h.labels[id] = v.get<std::string>();
  }
  if (auto p = config.find("problem_type"); p != config.end() && p->is_string())
    h.problem_type = p->get<std::string>();
  else if (h.labels.size() == 1)  // Hugging Face: num_labels 1 means regression
    h.problem_type = "regression";
  if (config.contains("classifier_dropout") && config["classifier_dropout"].is_number())
    h.dropout = config["classifier_dropout"].get<double>();
  else if (config.contains("hidden_dropout_prob") && config["hidden_dropout_prob"].is_number())
    h.dropout = config["hidden_dropout_prob"].get<double>();
  if (auto l = config.find("llmkit_head"); l != config.end()) {
    LLMKIT_CHECK(l->is_object(), "head: llmkit_head must be an object");
    try {
      h.task = l->value("task", h.task);
      h.pooling = l->value("pooling", h.pooling);
      h.dropout = l->value("dropout", h.dropout);
    } catch (const json::exception&) {
      fail("head: llmkit_head has a field of the wrong type: ", l->dump());
    }
  }
  if (arch != "bert") h.dropout = 0;
  h.validate(arch);
  return h;
}

json strip_head_fields(json config) {
  for (const char* k : kHeadKeys) config.erase(k);
  return config;
}

bool has_head_fields(const json& config) {
  return config.is_object() && config.contains("id2label") && config.contains("llmkit_head");
}

Classifier::Classifier(std::shared_ptr<Bert> b, const HeadConfig& cfg, uint64_t seed)
    : bert(std::move(b)), head_cfg_(cfg), arch_("bert"), head_name_("classifier") {
  LLMKIT_CHECK(bert != nullptr, "Classifier: no body");
  head_cfg_.validate(arch_);
  register_module("", bert);
  const DType dt = bert->parameters().front().dtype();
  dropout_ = register_module(
      "dropout", std::make_shared<nn::Dropout>(head_cfg_.dropout, &bert->dropout_generator()));
  head = register_module(head_name_, std::make_shared<nn::Linear>(
                                         bert->config().n_embd, head_cfg_.num_labels(), true, dt));
  init_head(seed);
}

Classifier::Classifier(std::shared_ptr<GPT> g, const HeadConfig& cfg, uint64_t seed)
    : gpt(std::move(g)), head_cfg_(cfg), head_name_("score") {
  LLMKIT_CHECK(gpt != nullptr, "Classifier: no body");
  arch_ = gpt->config().arch;
  if (head_cfg_.task == "sequence" && head_cfg_.pooling.empty()) head_cfg_.pooling = "last";
  head_cfg_.dropout = 0;
  head_cfg_.validate(arch_);
  register_module("", gpt);
  const DType dt = gpt->parameters().front().dtype();
  head = register_module(head_name_, std::make_shared<nn::Linear>(
                                         gpt->config().n_embd, head_cfg_.num_labels(), false, dt));
  init_head(seed);
}

void Classifier::init_head(uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  g.normal_(head->weight, 0.0, 0.02);
  if (head->bias.defined()) head->bias.zero_();
}

Generator& Classifier::dropout_generator() {
  return bert ? bert->dropout_generator() : gpt->dropout_generator();
}

namespace {

// h [B, T, C] at each row's last real token (mask u8 [B, T], right-padded) -> [B, C]: the sum
// over t of h * onehot(last), so the gradient flows back to that position only.
Tensor last_token(const Tensor& h, const Tensor& mask) {
  const int64_t B = h.size(0), T = h.size(1);
  const std::vector<uint8_t> m = mask.contiguous().to_vector<uint8_t>();
  std::vector<double> onehot(B * T, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = -1;
    for (int64_t t = 0; t < T; ++t)
      if (m[b * T + t]) last = t;
    LLMKIT_CHECK(last >= 0, "Classifier: row ", b, " of the batch has no real token");
    onehot[b * T + last] = 1.0;
  }
  const Tensor sel = Tensor::from_vector(onehot, {B, T, 1}).to(h.dtype());
  return ops::sum(h * sel, {1});
}

}  // namespace

Tensor Classifier::forward(const Tensor& ids, const Tensor& attention_mask) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "Classifier: ids ", ids.str(),
               " must be i32 [B, T]");
  LLMKIT_CHECK(attention_mask.defined() && attention_mask.dtype() == DType::U8 &&
                   attention_mask.shape() == ids.shape(),
               "Classifier: attention_mask ", attention_mask.str(), " must be u8 ",
               shape_str(ids.shape()));
  const bool token = head_cfg_.task == "token";
  if (bert) {
    const Tensor h = bert->encode(ids, Tensor(), attention_mask);       // [B, T, C]
    if (token) return head->forward(dropout_->forward(h));              // [B, T, L]
    const Tensor pooled = head_cfg_.pooling == "cls" ? bert->pooled(h)  // tanh(dense(h[:, 0]))
                                                     : Bert::pool(h, attention_mask, Pooling::Mean);
    return head->forward(dropout_->forward(pooled));  // [B, L]
  }
  const Tensor h = gpt->hidden(ids, attention_mask);  // [B, T, C]
  if (token) return head->forward(h);
  return head->forward(last_token(h, attention_mask));  // [B, L]
}

Tensor Classifier::loss(const Tensor& logits, const Tensor& labels) const {
  if (head_cfg_.regression()) {
    const int64_t B = logits.size(0);
    LLMKIT_CHECK(labels.numel() == B, "Classifier: ", B, " regression targets expected, got ",
                 labels.str());
    const Tensor diff = logits.reshape({B}) - labels.to(logits.dtype()).reshape({B});
    return ops::mean(diff * diff);
  }
  LLMKIT_CHECK(labels.dtype() == DType::I32, "Classifier: labels ", labels.str(), " must be i32");
  return ops::cross_entropy(logits, labels);
}

json Classifier::config_json() const {
  json c = bert ? bert->config().to_json() : gpt->config().to_json();
  head_cfg_.to_json(c);
  return c;
}

int64_t quantize_body(Classifier& model, const std::string& type) {
  nn::Module& body = model.bert ? static_cast<nn::Module&>(*model.bert) : *model.gpt;
  int64_t n = 0;
  for (auto& [name, m] : body.named_modules()) {
    auto* l = dynamic_cast<nn::Linear*>(m);
    if (l == nullptr || l->weight_quantised()) continue;
    const auto dot = name.rfind('.');
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    if (leaf == "lora_A" || leaf == "lora_B") continue;
    l->quantize_weight(type);
    ++n;
  }
  return n;
}

}  // namespace llmkit::models
