#include "llmkit/core/error.h"
#include "llmkit/train/task.h"
namespace llmkit::train {
std::unique_ptr<Task> make_bert_task(const nlohmann::json&, const TrainConfig&, const TaskData&) {
  fail("arch 'bert' is not implemented yet");
}

std::vector<std::string> bert_special_tokens(const nlohmann::json&, const TrainConfig&) { return {}; }
}  // namespace llmkit::train
