#include "llmkit/core/error.h"
#include "llmkit/train/task.h"
namespace llmkit::train {
std::unique_ptr<Task> make_rnn_task(const nlohmann::json&, const TrainConfig&, const TaskData&) {
  fail("arch 'rnn' is not implemented yet");
}

}  // namespace llmkit::train
