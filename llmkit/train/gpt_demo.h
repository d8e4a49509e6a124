// `llmkit demo`: the main job on built-in defaults. Trains a byte-level BPE tokenizer and a small
// GPT (configs/gpt2-demo.json's values, built in) on a text file -- by default the King James
// Bible that `make demo` extracts from Debian's bible-kjv -- and shows a sample before training,
// the loss falling, samples after, validation perplexity, and the commands to go on.
#pragma once

#include <string>

namespace llmkit::train {

struct GptDemoOptions {
  std::string data = "runs/kjv.txt";
  std::string out = "runs/demo";
  int64_t steps = 1200;
  uint64_t seed = 1337;
};

// Returns the final validation loss.
double run_gpt_demo(const GptDemoOptions& opt);

}  // namespace llmkit::train
