#include "llmkit/ops/embedding.h"

#include <cstring>

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::ops {

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  LLMKIT_CHECK(ids.dtype() == DType::I32 && weight.dim() == 2, "embedding: ids ", ids.str(),
               " and table ", weight.str(), " (want i32 ids and a [V, C] table)");
  const int64_t V = weight.size(0), C = weight.size(1), N = ids.numel();
  const Tensor ic = ids.contiguous(), wc = weight.contiguous().detach();
  const int32_t* pid = ic.data<int32_t>();
  for (int64_t i = 0; i < N; ++i)
    LLMKIT_CHECK(pid[i] >= 0 && pid[i] < V, "embedding: id ", pid[i], " at position ", i,
                 " is outside the table of ", V, " rows");
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const size_t row_bytes = C * dtype_size(weight.dtype());
  const char* src = static_cast<const char*>(wc.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(N, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      std::memcpy(dst + i * row_bytes, src + pid[i] * row_bytes, row_bytes);
  });
  if (needs_graph({&weight}))
    record(out, "embedding", {&weight}, [ic, N, C](Node& n, const Tensor& dout) {
      Tensor g = n.grad(0);
      const int32_t* id = ic.data<int32_t>();
      dispatch_float(dout.dtype(), "embedding", [&](auto t) {
        using T = decltype(t);
        T* pg = g.data<T>();
        const T* pd = dout.data<T>();
        parallel_for(C, 64, [&](int64_t c0, int64_t c1) {
          for (int64_t i = 0; i < N; ++i) {
            T* row = pg + static_cast<int64_t>(id[i]) * C;
            const T* d = pd + i * C;
            for (int64_t c = c0; c < c1; ++c) row[c] += d[c];
          }
        });
      });
    });
  return out;
}

}  // namespace llmkit::ops
