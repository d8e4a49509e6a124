// make_task: the model config's "arch" picks the family (see task.h).
#include "llmkit/train/task.h"

#include "llmkit/core/error.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

namespace {

std::string arch_of(const nlohmann::json& model_config) {
  LLMKIT_CHECK(model_config.is_object(), "config: \"model\" must be a JSON object");
  const auto it = model_config.find("arch");
  if (it == model_config.end()) return "gpt";  // the default family, as GPTConfig's
  LLMKIT_CHECK(it->is_string(),
               "config: \"arch\" must be a string (gpt, llama, bert, t5, bart or rnn)");
  return it->get<std::string>();
}

}  // namespace

std::vector<std::string> task_special_tokens(const nlohmann::json& model_config,
                                             const TrainConfig& tc) {
  const std::string arch = arch_of(model_config);
  if (arch == "bert") return bert_special_tokens(model_config, tc);
  if (arch == "t5" || arch == "bart") return t5_special_tokens(model_config, tc);
  return tokenizer::kGptSpecialTokens;
}

DataNeeds task_data_needs(const nlohmann::json& model_config, const TrainConfig& tc) {
  const std::string arch = arch_of(model_config);
  if (arch == "gpt" || arch == "llama") return gpt_data_needs(model_config, tc);
  if (arch == "bert") return bert_data_needs(model_config, tc);
  if (arch == "t5" || arch == "bart") return t5_data_needs(model_config, tc);
  if (arch == "rnn") return rnn_data_needs(model_config, tc);
  fail("config: unknown arch '", arch, "' (gpt, llama, bert, t5, bart or rnn)");
}

std::unique_ptr<Task> make_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                const TaskData& data) {
  const std::string arch = arch_of(model_config);
  if (arch == "gpt" || arch == "llama") return make_gpt_task(model_config, tc, data);
  if (arch == "bert") return make_bert_task(model_config, tc, data);
  if (arch == "t5" || arch == "bart") return make_t5_task(model_config, tc, data);
  if (arch == "rnn") return make_rnn_task(model_config, tc, data);
  fail("config: unknown arch '", arch, "' (gpt, llama, bert, t5, bart or rnn)");
}

}  // namespace llmkit::train
