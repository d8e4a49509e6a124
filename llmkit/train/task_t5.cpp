#include "llmkit/core/error.h"
#include "llmkit/train/task.h"
namespace llmkit::train {
std::unique_ptr<Task> make_t5_task(const nlohmann::json&, const TrainConfig&, const TaskData&) {
  fail("arch 't5' is not implemented yet");
}

std::vector<std::string> t5_special_tokens(const nlohmann::json&, const TrainConfig&) { return {}; }
}  // namespace llmkit::train
