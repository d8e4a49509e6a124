// `llmkit quantize --model PATH --type f32|f16|...|q6_k --out X.gguf`: loads any decoder
// models::load takes (llmkit run dir, Hugging Face dir, .gguf) and writes it as a GGUF v3 file
// llama.cpp loads, matrices in the chosen type (models::export_gguf; the type policy is in
// gguf_export.h and docs/quantize.md). Progress on stderr; the last line of stdout is JSON:
// {"out": ..., "type": ..., "bytes": ..., "seconds": ...}.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/models/gguf_export.h"
#include "tools/llmkit/command.h"

namespace {
struct QuantizeArgs {
  std::string model, type, out;
};
}  // namespace

LLMKIT_COMMAND(
    {"quantize", "Write a decoder as a GGUF file for llama.cpp, quantised to --type",
     [](CLI::App& sub) {
       auto a = std::make_shared<QuantizeArgs>();
       sub.add_option("--model", a->model, "llmkit run dir, Hugging Face dir or .gguf file")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--type", a->type,
                      std::string("tensor type of the file: ") + llmkit::models::file_type_names())
           ->required()
           ->check(CLI::Validator(
               [](std::string& s) -> std::string {
                 try {
                   llmkit::models::parse_file_type(s);
                   return "";
                 } catch (const llmkit::Error&) {
                   return "'" + s + "' is not one of " + llmkit::models::file_type_names();
                 }
               },
               "TYPE", "file_type"));
       sub.add_option("--out", a->out, "the .gguf file to write (replaced atomically)")->required();
       return [a] {
         const auto t0 = std::chrono::steady_clock::now();
         const auto m = llmkit::models::load(a->model);
         std::fprintf(stderr, "quantize: loaded %s (%s, %s) in %.2f s\n", a->model.c_str(),
                      m.arch.c_str(), llmkit::models::source_kind_name(m.source), m.load_seconds);
         llmkit::models::GgufExportOptions o;
         o.type = llmkit::models::parse_file_type(a->type);
         o.verbose = true;
         llmkit::models::export_gguf(m, a->out, o);
         const double s =
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
         const auto bytes = std::filesystem::file_size(a->out);
         std::fprintf(stderr, "quantize: wrote %s (%s, %.1f MB) in %.1f s\n", a->out.c_str(),
                      a->type.c_str(), bytes / 1e6, s);
         const nlohmann::json j{{"out", a->out},
                                {"type", a->type},
                                {"bytes", bytes},
                                {"seconds", std::round(s * 1000) / 1000}};
         std::printf("%s\n", j.dump().c_str());
       };
     }});
