// The experiment of the concept notes (1.2.1 RNN에서 트랜스포머로): does attention hold up where
// the answer depends on an early token, and does the RNN train slower but generate cheaper?
// Task (synthetic recall): [key, d_1 ... d_N, query] -> key. One of K key tokens, N random
// distractor tokens, a query token; the loss is on the query position only. An LSTM language
// model (models::RNNLM) and a small GPT (models::GPT, sinusoidal positions, block_size >= N + 2)
// of about the same parameter count train on the same stream of sequences for the same number of
// steps (same tokens); for each N the program reports held-out accuracy, training tokens/s,
// per-token generation time (RNN step vs GPT decode with a KV cache holding N + 2 tokens) and the
// memory carried between tokens (RNN state vs KV cache). Prints a markdown table and writes an
// SVG plot of accuracy against log2 N. Not a Google Benchmark: one run, fixed budgets.
// Usage (bench/rnn_vs_transformer/run.sh runs the two models side by side and merges):
//   bench_rnn_vs_transformer [--ns 16,64,256] [--cost-ns 1024] [--cost-steps 20] [--steps 2000]
//       [--batch 16] [--eval 512] [--lr 3e-3] [--seed S] [--models lstm,gpt] [--rows FILE]
//       [--svg FILE] [--verbose]
//   bench_rnn_vs_transformer --report ROWS... [--svg FILE]     table (and plot) of earlier runs
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/io/svg_plot.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/clip.h"

using namespace llmkit;
using Clock = std::chrono::steady_clock;

namespace {

// Vocabulary: 0 query, 1..K keys, K+1 .. K+D distractors.
constexpr int32_t kQuery = 0;
constexpr int32_t kKeys = 8;
constexpr int32_t kDistractors = 32;
constexpr int64_t kVocab = 1 + kKeys + kDistractors;

struct Options {
  std::vector<int64_t> ns = {16, 64, 256};
  // Lengths measured for cost only (a few training steps for tokens/s, generation time and
  // memory; no accuracy): training them to the same budget would not fit the time limit.
  std::vector<int64_t> cost_ns = {1024};
  int64_t cost_steps = 20;
  int64_t steps = 2000, batch = 16, eval = 512;
  double lr = 3e-3;
  uint64_t seed = 1;
  std::string svg;
  bool verbose = false;
};

// B sequences of length N + 2 and their targets (-100 except the last position = the key).
void make_batch(Generator& g, int64_t B, int64_t N, std::vector<int32_t>& ids,
                std::vector<int32_t>& tgt) {
  const int64_t T = N + 2;
  ids.assign(B * T, 0);
  tgt.assign(B * T, -100);
  for (int64_t b = 0; b < B; ++b) {
    int32_t* s = ids.data() + b * T;
    s[0] = 1 + static_cast<int32_t>(g.randint(kKeys));
    for (int64_t t = 1; t <= N; ++t)
      s[t] = 1 + kKeys + static_cast<int32_t>(g.randint(kDistractors));
    s[T - 1] = kQuery;
    tgt[b * T + T - 1] = s[0];
  }
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The two models behind one interface: logits [B, T, V] for ids [B, T].
struct Model {
  std::string name;
  nn::Module* module;
  std::function<Tensor(const Tensor&)> forward;
};

struct Result {
  double accuracy = 0, train_tok_s = 0, final_loss = 0, train_s = 0;
};

Result train_and_eval(Model& m, int64_t N, const Options& o) {
  const int64_t T = N + 2, B = o.batch;
  train::AdamW opt(m.module->named_parameters(),
                   {.lr = o.lr, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.0});
  Generator data(o.seed * 1000 + N);  // the same sequences for both models
  std::vector<int32_t> ids, tgt;
  Result r;
  m.module->train();
  const auto t0 = Clock::now();
  double loss_sum = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    make_batch(data, B, N, ids, tgt);
    // linear warm-up over the first 10% of the steps, then constant
    opt.set_lr(o.lr * std::min(1.0, (step + 1.0) / std::max<int64_t>(1, o.steps / 10)));
    opt.zero_grad();
    Tensor loss = ops::cross_entropy(m.forward(Tensor::from_vector(ids, {B, T})),
                                     Tensor::from_vector(tgt, {B, T}));
    loss.backward();
    train::clip_grad_norm(m.module->parameters(), 1.0);
    opt.step();
    const double l = loss.item<double>();
    if (step >= o.steps - 20) loss_sum += l;
    if (o.verbose && (step + 1) % 100 == 0)
      std::fprintf(stderr, "  %s N=%lld step %lld loss %.3f\n", m.name.c_str(),
                   static_cast<long long>(N), static_cast<long long>(step + 1), l);
  }
  r.train_s = seconds_since(t0);
  r.train_tok_s = static_cast<double>(o.steps) * B * T / r.train_s;
  r.final_loss = loss_sum / std::min<int64_t>(20, o.steps);
  // held-out accuracy: argmax at the query position == key
  m.module->eval();
  NoGradGuard ng;
  Generator test(o.seed * 7777 + N);
  int64_t correct = 0;
  const int64_t eb = 64;
  for (int64_t done = 0; done < o.eval; done += eb) {
    const int64_t n = std::min(eb, o.eval - done);
    make_batch(test, n, N, ids, tgt);
    Tensor logits = m.forward(Tensor::from_vector(ids, {n, T}));  // [n, T, V]
    const std::vector<float> last = logits.select(1, T - 1).contiguous().to_vector<float>();
    for (int64_t b = 0; b < n; ++b) {
      const float* row = last.data() + b * kVocab;
      const int64_t arg = std::max_element(row, row + kVocab) - row;
      correct += arg == tgt[b * T + T - 1];
    }
  }
  r.accuracy = o.eval > 0 ? static_cast<double>(correct) / o.eval : std::nan("");
  return r;
}

// Median seconds of `reps` calls of fn.
template <typename Fn>
double median_time(int reps, Fn fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoll(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

std::string human_bytes(double b) {
  char buf[32];
  if (b < 1024)
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  else if (b < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1024 / 1024);
  return buf;
}

// One measured (N, model) pair; a line of the --rows file.
struct Row {
  int64_t n = 0;
  std::string model;
  double params = 0, accuracy = 0, loss = 0, tok_s = 0, train_s = 0, gen_us = 0, bytes = 0;
};

std::string row_line(const Row& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld\t%s\t%.0f\t%.6f\t%.6f\t%.1f\t%.2f\t%.3f\t%.0f",
                static_cast<long long>(r.n), r.model.c_str(), r.params, r.accuracy, r.loss, r.tok_s,
                r.train_s, r.gen_us, r.bytes);
  return buf;
}

std::vector<Row> read_rows(const std::string& path) {
  std::ifstream in(path);
  LLMKIT_CHECK(in.good(), "cannot open rows file '", path, "'");
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {  // strtod-based, so "nan" (cost-only rows) reads back
    Row r;
    long long n = 0;
    char model[64] = {0};
    if (std::sscanf(line.c_str(), "%lld %63s %lf %lf %lf %lf %lf %lf %lf", &n, model, &r.params,
                    &r.accuracy, &r.loss, &r.tok_s, &r.train_s, &r.gen_us, &r.bytes) != 9)
      continue;
    r.n = n;
    r.model = model;
    rows.push_back(r);
  }
  return rows;
}

void print_table(std::vector<Row> rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.n != b.n ? a.n < b.n : a.model > b.model;
  });
  std::printf(
      "| N | model | params | accuracy | final train loss | train tokens/s | train time | "
      "gen time / token | state carried per sequence |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    char acc[64], loss[32];
    if (std::isnan(r.accuracy)) {
      std::snprintf(acc, sizeof acc, "(cost only)");
      std::snprintf(loss, sizeof loss, "-");
    } else {
      std::snprintf(acc, sizeof acc, "%.1f%%", 100 * r.accuracy);
      std::snprintf(loss, sizeof loss, "%.3f", r.loss);
    }
    std::printf("| %lld | %s | %.0fK | %s | %s | %.0f | %.0f s | %.1f us | %s |\n",
                static_cast<long long>(r.n), r.model.c_str(), r.params / 1e3, acc, loss, r.tok_s,
                r.train_s, r.gen_us, human_bytes(r.bytes).c_str());
  }
}

void write_plot(const std::vector<Row>& rows, const std::string& path) {
  io::PlotSeries lstm{"LSTM", {}, {}}, gpt{"GPT (transformer)", {}, {}},
      chance{"chance (1/8)", {}, {}};
  std::vector<Row> sorted = rows;
  std::sort(sorted.begin(), sorted.end(), [](const Row& a, const Row& b) { return a.n < b.n; });
  for (const Row& r : sorted) {
    if (std::isnan(r.accuracy)) continue;  // cost-only rows
    io::PlotSeries& s = r.model == "LSTM" ? lstm : gpt;
    s.x.push_back(std::log2(static_cast<double>(r.n)));
    s.y.push_back(100 * r.accuracy);
    if (chance.x.empty() || chance.x.back() != s.x.back()) {
      chance.x.push_back(s.x.back());
      chance.y.push_back(100.0 / kKeys);
    }
  }
  io::PlotOptions po;
  po.title = "Recall of a key after N distractors (same steps, same sequences)";
  po.x_label = "log2 N (N distractor tokens between key and query: 4 = 16, 10 = 1024)";
  po.y_label = "held-out accuracy (%)";
  std::ofstream(path) << io::line_plot_svg({lstm, gpt, chance}, po);
}

// Trains and measures one model at one N.
Row run_one(const std::string& which, int64_t N, const Options& o) {
  const int64_t T = N + 2;
  Row row;
  row.n = N;
  // LSTM: 1 layer, hidden 128 (about 107K parameters).
  models::RNNLMConfig rc;
  rc.cell = "lstm";
  rc.n_layer = 1;
  rc.n_embd = 64;
  rc.hidden = 128;
  rc.vocab_size = kVocab;
  rc.block_size = T;
  // GPT: 2 layers, 64 channels, 4 heads, sinusoidal positions (about 103K parameters).
  models::GPTConfig gc;
  gc.n_layer = 2;
  gc.n_head = 4;
  gc.n_embd = 64;
  gc.vocab_size = kVocab;
  gc.block_size = T + 1;
  gc.pos_encoding = "sinusoidal";
  std::vector<int32_t> ctx(T, 1 + kKeys);
  if (which == "lstm") {
    models::RNNLM rnn(rc, o.seed);
    Model m{"LSTM", &rnn, [&](const Tensor& ids) { return rnn.forward(ids); }};
    const Result r = train_and_eval(m, N, o);
    NoGradGuard ng;
    nn::RNNState s;
    rnn.forward(Tensor::from_vector(ctx, {1, T}), &s);
    Tensor next = Tensor::from_vector(std::vector<int32_t>{kQuery}, {1});
    row.gen_us = 1e6 * median_time(200, [&] {
                   nn::RNNState s2 = s;  // step replaces the handles; s keeps the context's state
                   rnn.step(next, s2);
                 });
    row.bytes = static_cast<double>(rnn.rnn->state_bytes(1));
    row.model = "LSTM";
    row.params = static_cast<double>(rnn.num_parameters());
    row.accuracy = r.accuracy, row.loss = r.final_loss, row.tok_s = r.train_tok_s;
    row.train_s = r.train_s;
  } else {
    models::GPT gpt(gc, o.seed);
    Model m{"GPT", &gpt, [&](const Tensor& ids) { return gpt.forward(ids); }};
    const Result r = train_and_eval(m, N, o);
    NoGradGuard ng;
    auto caches = gpt.make_caches(1, T + 1);
    gpt.forward(Tensor::from_vector(ctx, {1, T}), &caches);
    Tensor next = Tensor::from_vector(std::vector<int32_t>{kQuery}, {1, 1});
    row.gen_us = 1e6 * median_time(200, [&] {
                   for (auto& c : caches) c.len = T;  // decode token T + 1 after T in the cache
                   gpt.forward(next, &caches);
                 });
    row.bytes = 2.0 * gc.n_layer * T * gc.n_embd * sizeof(float);  // K and V, f32
    row.model = "GPT";
    row.params = static_cast<double>(gpt.num_parameters());
    row.accuracy = r.accuracy, row.loss = r.final_loss, row.tok_s = r.train_tok_s;
    row.train_s = r.train_s;
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string models = "lstm,gpt", rows_path;
  std::vector<std::string> reports;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--verbose") {
      o.verbose = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "option %s needs a value\n", argv[i]);
      return 2;
    }
    const char* v = argv[i + 1];
    if (k == "--ns")
      o.ns = parse_list(v);
    else if (k == "--steps")
      o.steps = std::atoll(v);
    else if (k == "--batch")
      o.batch = std::atoll(v);
    else if (k == "--eval")
      o.eval = std::atoll(v);
    else if (k == "--lr")
      o.lr = std::atof(v);
    else if (k == "--seed")
      o.seed = std::strtoull(v, nullptr, 10);
    else if (k == "--svg")
      o.svg = v;
    else if (k == "--models")
      models = v;
    else if (k == "--cost-ns")
      o.cost_ns = parse_list(v);
    else if (k == "--cost-steps")
      o.cost_steps = std::atoll(v);
    else if (k == "--rows")
      rows_path = v;
    else if (k == "--report")
      reports.push_back(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    std::vector<Row> rows;
    if (!reports.empty()) {  // merge rows files written by earlier runs
      for (const auto& p : reports)
        for (const Row& r : read_rows(p)) rows.push_back(r);
    } else {
      std::fprintf(stderr,
                   "recall after N distractors: %d keys, %d distractor tokens, %lld steps x %lld "
                   "sequences per model and N, %lld held-out sequences, %d thread(s)\n",
                   kKeys, kDistractors, static_cast<long long>(o.steps),
                   static_cast<long long>(o.batch), static_cast<long long>(o.eval), num_threads());
      std::ofstream rows_out;
      if (!rows_path.empty()) rows_out.open(rows_path);
      Options cost = o;
      cost.steps = o.cost_steps;
      cost.eval = 0;
      std::vector<std::pair<int64_t, const Options*>> plan;
      for (const int64_t N : o.ns) plan.emplace_back(N, &o);
      for (const int64_t N : o.cost_ns) plan.emplace_back(N, &cost);
      for (const auto& [N, opts] : plan)
        for (const std::string which : {"lstm", "gpt"}) {
          if (models.find(which) == std::string::npos) continue;
          rows.push_back(run_one(which, N, *opts));
          std::fprintf(stderr, "%s\n", row_line(rows.back()).c_str());
          if (rows_out.is_open()) rows_out << row_line(rows.back()) << "\n" << std::flush;
        }
    }
    print_table(rows);
    if (!o.svg.empty()) {
      write_plot(rows, o.svg);
      std::printf("\nplot: %s\n", o.svg.c_str());
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
