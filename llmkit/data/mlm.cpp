// Masked-LM masking and BERT input windows (see mlm.h).
#include "llmkit/data/mlm.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace llmkit::data {

namespace {

bool is_special(const std::vector<int32_t>& special, int32_t id) {
  return std::find(special.begin(), special.end(), id) != special.end();  // a handful of ids
}

double uniform01(Generator& g) {
  return static_cast<double>(g.next_u64() >> 11) * 0x1.0p-53;
}

// A uniform draw from [0, vocab_size) minus the special ids (rejection; validate() made sure one
// exists).
int32_t random_token(const MaskingOptions& opt, Generator& g) {
  for (;;) {
    const auto id = static_cast<int32_t>(g.randint(static_cast<uint64_t>(opt.vocab_size)));
    if (!is_special(opt.special_ids, id)) return id;
  }
}

}  // namespace

void MaskingOptions::validate() const {
  LLMKIT_CHECK(mask_prob > 0 && mask_prob <= 1, "mlm: mask_prob ", mask_prob, " outside (0, 1]");
  LLMKIT_CHECK(mask_token_frac >= 0 && random_token_frac >= 0 &&
                   mask_token_frac + random_token_frac <= 1 + 1e-12,
               "mlm: mask_token_frac ", mask_token_frac, " and random_token_frac ",
               random_token_frac, " must be >= 0 and add up to at most 1");
  LLMKIT_CHECK(vocab_size > 0, "mlm: vocab_size must be positive, got ", vocab_size);
  LLMKIT_CHECK(mask_id >= 0 && mask_id < vocab_size, "mlm: mask_id ", mask_id,
               " outside the vocabulary [0, ", vocab_size, ")");
  bool any_plain = false;
  for (int32_t id = 0; id < vocab_size && !any_plain; ++id)
    any_plain = !is_special(special_ids, id);
  LLMKIT_CHECK(any_plain, "mlm: every id of the vocabulary (", vocab_size,
               ") is special; nothing to draw random replacements from");
}

int64_t mask_tokens(std::span<int32_t> ids, std::span<int32_t> labels, const MaskingOptions& opt,
                    Generator& gen) {
  LLMKIT_CHECK(ids.size() == labels.size(), "mlm: ", ids.size(), " ids but ", labels.size(),
               " labels");
  std::fill(labels.begin(), labels.end(), -100);
  std::vector<int32_t> cand;  // positions that may be masked
  cand.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    if (!is_special(opt.special_ids, ids[i])) cand.push_back(static_cast<int32_t>(i));
  const auto n = static_cast<int64_t>(cand.size());
  if (n == 0) return 0;
  const int64_t k = std::clamp<int64_t>(std::llround(opt.mask_prob * static_cast<double>(n)), 1, n);
  // Partial Fisher-Yates: the first k entries become a uniform random k-subset.
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = i + static_cast<int64_t>(gen.randint(static_cast<uint64_t>(n - i)));
    std::swap(cand[i], cand[j]);
    const int32_t pos = cand[i];
    labels[pos] = ids[pos];
    const double u = uniform01(gen);
    if (u < opt.mask_token_frac)
      ids[pos] = opt.mask_id;
    else if (u < opt.mask_token_frac + opt.random_token_frac)
      ids[pos] = random_token(opt, gen);
    // else: kept as it is, but still predicted
  }
  return k;
}

// --- windows ---

MlmBatcher::MlmBatcher(const TokenShard& shard, Options opt)
    : shard_(shard),
      opt_(std::move(opt)),
      content_(opt_.block - (opt_.nsp ? 3 : 2)),
      window_gen_(opt_.seed),
      mask_gen_(opt_.seed ^ 0x9e3779b97f4a7c15ull) {
  LLMKIT_CHECK(opt_.batch > 0, "mlm: batch size must be positive, got ", opt_.batch);
  LLMKIT_CHECK(content_ >= (opt_.nsp ? 2 : 1), "mlm: block_size ", opt_.block,
               " leaves no room for text between [CLS] and [SEP]",
               opt_.nsp ? " (next-sentence prediction needs at least 5)" : "");
  LLMKIT_CHECK(shard.size() >= content_, shard.path(), ": ", shard.size(),
               " tokens; one window needs ", content_, " (block_size minus [CLS]/[SEP])");
  const BertSpecialIds& s = opt_.special;
  auto& sp = opt_.masking.special_ids;
  for (int32_t id : {s.pad, s.cls, s.sep, s.mask})
    if (id >= 0 && !is_special(sp, id)) sp.push_back(id);
  opt_.masking.mask_id = s.mask;
  opt_.masking.validate();
  if (!opt_.sequential) {
    buf_.ids = Tensor::empty({opt_.batch, opt_.block}, DType::I32);
    buf_.token_type_ids = Tensor::empty({opt_.batch, opt_.block}, DType::I32);
    buf_.labels = Tensor::empty({opt_.batch, opt_.block}, DType::I32);
    if (opt_.nsp) buf_.nsp_labels = Tensor::empty({opt_.batch}, DType::I32);
  }
  a_.resize(content_);
  b_.resize(content_);
}

int64_t MlmBatcher::num_windows() const {
  return shard_.size() / content_;
}

void MlmBatcher::restart() {
  set_position({});
}

void MlmBatcher::set_position(const Position& p) {
  window_gen_.set_state(window_gen_.seed(), p.windows);
  mask_gen_.set_state(mask_gen_.seed(), p.masking);
  cursor_ = p.cursor;
}

int64_t MlmBatcher::next_start() {
  if (opt_.sequential) return cursor_++ * content_;
  return static_cast<int64_t>(
      window_gen_.randint(static_cast<uint64_t>(shard_.size() - content_ + 1)));
}

void MlmBatcher::fill_row(int64_t r, int32_t* ids, int32_t* types, int32_t* labels, int32_t* nsp) {
  const BertSpecialIds& s = opt_.special;
  const int64_t T = opt_.block, L = content_;
  int32_t* row = ids + r * T;
  int32_t* type = types + r * T;
  const int64_t start = next_start();
  if (!opt_.nsp) {  // [CLS] text [SEP]
    row[0] = s.cls;
    shard_.read(start, L, row + 1);
    row[L + 1] = s.sep;
    std::fill(type, type + T, 0);
  } else {  // [CLS] A [SEP] B [SEP]
    const int64_t la = 1 + static_cast<int64_t>(window_gen_.randint(static_cast<uint64_t>(L - 1)));
    const int64_t lb = L - la;
    const bool is_next = (window_gen_.next_u64() & 1) == 0;
    shard_.read(start, L, a_.data());  // A = a_[0, la); the following text a_[la, L)
    int64_t b_start = start + la;
    if (!is_next) {
      const auto span = static_cast<uint64_t>(shard_.size() - lb + 1);
      do b_start = static_cast<int64_t>(window_gen_.randint(span));
      while (b_start == start + la && span > 1);
      shard_.read(b_start, lb, b_.data());
    } else {
      std::copy(a_.begin() + la, a_.begin() + L, b_.begin());
    }
    row[0] = s.cls;
    std::copy(a_.begin(), a_.begin() + la, row + 1);
    row[la + 1] = s.sep;
    std::copy(b_.begin(), b_.begin() + lb, row + la + 2);
    row[T - 1] = s.sep;
    std::fill(type, type + la + 2, 0);
    std::fill(type + la + 2, type + T, 1);
    nsp[r] = is_next ? 0 : 1;
  }
  mask_tokens({row, static_cast<size_t>(T)}, {labels + r * T, static_cast<size_t>(T)}, opt_.masking,
              mask_gen_);
}

std::optional<MlmBatch> MlmBatcher::next() {
  MlmBatch b = buf_;
  int64_t rows = opt_.batch;
  if (opt_.sequential) {
    rows = std::min(opt_.batch, num_windows() - cursor_);
    if (rows <= 0) return std::nullopt;
    b.ids = Tensor::empty({rows, opt_.block}, DType::I32);
    b.token_type_ids = Tensor::empty({rows, opt_.block}, DType::I32);
    b.labels = Tensor::empty({rows, opt_.block}, DType::I32);
    if (opt_.nsp) b.nsp_labels = Tensor::empty({rows}, DType::I32);
  }
  int32_t* nsp = opt_.nsp ? b.nsp_labels.data<int32_t>() : nullptr;
  for (int64_t r = 0; r < rows; ++r)
    fill_row(r, b.ids.data<int32_t>(), b.token_type_ids.data<int32_t>(), b.labels.data<int32_t>(),
             nsp);
  return b;
}

}  // namespace llmkit::data
