// Updates over many small tensors in one addon call. AttFC's class encoder follows f_q by an
// exponential moving average of ~200 tensors per step; as tfjs ops that is three kernels (and three
// JS <-> addon round trips) per tensor. Results are new tensors: tfjs tensors are immutable, and f_k's
// old values may still be shared.
#include "binding.h"

#include <ATen/Parallel.h>

#include <vector>

namespace {

using namespace attfc;

// emaStep(ks[], qs[], m) -> new tensors k * m + q * (1 - m), elementwise in float32 (as tfjs computes
// add(mul(k, m), mul(q, 1 - m))); every pair float32, CPU, of one size.
napi_value EmaStep(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 3, "emaStep");
    State& st = state(env);
    std::vector<int64_t> ks = toIntVector(env, a[0], "ks");
    std::vector<int64_t> qs = toIntVector(env, a[1], "qs");
    const double m = toDouble(env, a[2], "momentum");
    if (ks.size() != qs.size()) throw ArgError("attfc_torch.emaStep: ks and qs differ in length");
    const float mf = static_cast<float>(m);
    const float rest = static_cast<float>(1.0 - m);
    std::vector<at::Tensor> out;
    out.reserve(ks.size());
    for (size_t i = 0; i < ks.size(); i++) {
      at::Tensor k = getTensor(st, ks[i]).contiguous();
      at::Tensor q = getTensor(st, qs[i]).contiguous();
      if (k.scalar_type() != at::kFloat || q.scalar_type() != at::kFloat || !k.device().is_cpu() || !q.device().is_cpu() || k.sizes() != q.sizes())
        throw ArgError("attfc_torch.emaStep: pair " + std::to_string(i) + " is not two float32 CPU tensors of one shape");
      at::Tensor r = at::empty_like(k);
      const float* kp = k.data_ptr<float>();
      const float* qp = q.data_ptr<float>();
      float* rp = r.data_ptr<float>();
      at::parallel_for(0, k.numel(), 1 << 15, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; j++) {
          const float x = kp[j] * mf;
          const float y = qp[j] * rest;
          rp[j] = x + y;
        }
      });
      out.push_back(std::move(r));
    }
    std::vector<napi_value> handles;
    for (at::Tensor& t : out) handles.push_back(makeNumber(env, putTensor(st, std::move(t))));
    return makeArray(env, handles);
  });
}

ExportFunction exportEmaStep("emaStep", EmaStep);

}  // namespace
