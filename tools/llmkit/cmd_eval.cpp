// `llmkit eval`: loss and perplexity of a trained model on a text file. The last line of stdout is
// JSON: {"loss": ..., "perplexity": ..., "tokens": ...}.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "llmkit/train/checkpoint.h"
#include "tools/llmkit/command.h"

LLMKIT_COMMAND({"eval", "Loss and perplexity of a model on a text file", [](CLI::App& sub) {
                  auto dir = std::make_shared<std::string>();
                  auto file = std::make_shared<std::string>();
                  auto batch = std::make_shared<int64_t>(8);
                  sub.add_option("--model", *dir, "model directory")->required()->check(CLI::ExistingDirectory);
                  sub.add_option("--data", *file, "text file")->required()->check(CLI::ExistingFile);
                  sub.add_option("--batch-size", *batch, "windows per forward pass")
                      ->capture_default_str()->check(CLI::PositiveNumber);
                  return [dir, file, batch] {
                    auto model = llmkit::train::load_model(*dir);
                    const auto tok = llmkit::tokenizer::Tokenizer::load(*dir + "/tokenizer.json");
                    std::ifstream in(*file, std::ios::binary);
                    std::stringstream ss;
                    ss << in.rdbuf();
                    const std::vector<int32_t> ids = tok.encode(ss.str());
                    const double loss = llmkit::train::evaluate_tokens(*model, ids, *batch);
                    const int64_t T = model->config().block_size;
                    const long long scored = (static_cast<int64_t>(ids.size()) - 1) / T * T;
                    std::printf("{\"loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %lld}\n", loss,
                                std::exp(loss), scored);
                  };
                }});
