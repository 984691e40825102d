// Fused batch norm (+ PReLU) kernels: see fused_norm.h. Statistics and the backward's channel sums
// accumulate in float64 (per thread, then added), so the results do not depend on the thread count
// beyond float64 rounding. Nothing here allocates more than the outputs and per-thread sums.
#include "fused_norm.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// the memory-bound loops below get an AVX2/AVX-512 version next to the baseline one, chosen at load time
#define ATTFC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ATTFC_CLONES
#endif

namespace attfc::fused {
namespace {

struct Layout {
  int64_t n, c, hw;
  bool channelsLast;  // [N, H, W, C] in memory (or [N, C])
};

Layout layoutOf(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.device().is_cpu(), "attfc fused norm: ", what, " must be a float32 CPU tensor");
  if (t.dim() == 2) {
    TORCH_CHECK(t.is_contiguous(), "attfc fused norm: ", what, " [N, C] must be contiguous");
    return {t.size(0), t.size(1), 1, true};
  }
  TORCH_CHECK(t.dim() == 4, "attfc fused norm: ", what, " must be [N, C] or [N, C, H, W]");
  const int64_t hw = t.size(2) * t.size(3);
  if (t.is_contiguous(at::MemoryFormat::ChannelsLast)) return {t.size(0), t.size(1), hw, true};
  TORCH_CHECK(t.is_contiguous(), "attfc fused norm: ", what, " must be NCHW or channels-last contiguous");
  return {t.size(0), t.size(1), hw, false};
}

/** `t` in the same memory layout as `like` (a no-op when it already is). */
at::Tensor sameLayout(const at::Tensor& t, const Layout& like) {
  if (t.dim() == 4) return t.contiguous(like.channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  return t.contiguous();
}

const float* f32(const at::Tensor& t) { return t.data_ptr<float>(); }

// ---- statistics ----

// float sums over blocks of this many rows (vectorised across channels), added into float64 after each block
constexpr int64_t kBlockRows = 64;

ATTFC_CLONES void rowSums(const float* p, int64_t rows, int64_t c, double* s, double* q) {
  std::vector<float> acc(2 * c);
  float* as = acc.data();
  float* aq = as + c;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const int64_t r1 = std::min(rows, r0 + kBlockRows);
    for (int64_t r = r0; r < r1; r++) {
      const float* row = p + r * c;
      for (int64_t j = 0; j < c; j++) {
        const float v = row[j];
        as[j] += v;
        aq[j] += v * v;
      }
    }
    for (int64_t j = 0; j < c; j++) {
      s[j] += as[j];
      q[j] += aq[j];
    }
  }
}

ATTFC_CLONES void planeSums(const float* p, int64_t len, double& s, double& q) {
  float ls[16] = {0}, lq[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= len; i += 16)
    for (int k = 0; k < 16; k++) {
      const float v = p[i + k];
      ls[k] += v;
      lq[k] += v * v;
    }
  double a = 0, b = 0;
  for (int k = 0; k < 16; k++) {
    a += ls[k];
    b += lq[k];
  }
  for (; i < len; i++) {
    a += p[i];
    b += static_cast<double>(p[i]) * p[i];
  }
  s += a;
  q += b;
}

// ---- y * scale + shift, then PReLU ----

template <bool Act>
ATTFC_CLONES void rowsAffine(const float* y, float* o, int64_t rows, int64_t c, const float* sc, const float* sh, const float* al) {
  for (int64_t r = 0; r < rows; r++, y += c, o += c)
    for (int64_t j = 0; j < c; j++) {
      const float z = y[j] * sc[j] + sh[j];
      o[j] = Act ? z * (1.f + static_cast<float>(!(z > 0)) * (al[j] - 1.f)) : z;
    }
}

template <bool Act>
ATTFC_CLONES void planeAffine(const float* y, float* o, int64_t len, float sc, float sh, float al) {
  for (int64_t i = 0; i < len; i++) {
    const float z = y[i] * sc + sh;
    o[i] = Act ? z * (1.f + static_cast<float>(!(z > 0)) * (al - 1.f)) : z;
  }
}

// ---- backward: channel sums of g, g*y and (PReLU) d*z where z <= 0; then dy = A g + B y + C ----

template <bool Act>
ATTFC_CLONES void rowsGradSums(const float* d, const float* y, int64_t rows, int64_t c, const float* sc, const float* sh, const float* al, double* sg, double* sgy, double* sda) {
  std::vector<float> acc(3 * c);
  float* ag = acc.data();
  float* agy = ag + c;
  float* ada = agy + c;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const int64_t r1 = std::min(rows, r0 + kBlockRows);
    for (int64_t r = r0; r < r1; r++) {
      const float* dr = d + r * c;
      const float* yr = y + r * c;
      for (int64_t j = 0; j < c; j++) {
        float g = dr[j];
        if (Act) {
          const float z = yr[j] * sc[j] + sh[j];
          const float neg = static_cast<float>(!(z > 0));  // a mask, not a branch: signs are random
          ada[j] += neg * g * z;
          g *= 1.f + neg * (al[j] - 1.f);
        }
        ag[j] += g;
        agy[j] += g * yr[j];
      }
    }
    for (int64_t j = 0; j < c; j++) {
      sg[j] += ag[j];
      sgy[j] += agy[j];
      if (Act) sda[j] += ada[j];
    }
  }
}

template <bool Act>
ATTFC_CLONES void planeGradSums(const float* d, const float* y, int64_t len, float sc, float sh, float al, double& sg, double& sgy, double& sda) {
  float lg[16] = {0}, lgy[16] = {0}, lda[16] = {0};
  int64_t i = 0;
  auto one = [&](int64_t idx, int k) {
    float g = d[idx];
    if (Act) {
      const float z = y[idx] * sc + sh;
      const float neg = static_cast<float>(!(z > 0));
      lda[k] += neg * g * z;
      g *= 1.f + neg * (al - 1.f);
    }
    lg[k] += g;
    lgy[k] += g * y[idx];
  };
  for (; i + 16 <= len; i += 16)
    for (int k = 0; k < 16; k++) one(i + k, k);
  for (int k = 0; i < len; i++, k++) one(i, k);
  for (int k = 0; k < 16; k++) {
    sg += lg[k];
    sgy += lgy[k];
    sda += lda[k];
  }
}

template <bool Act>
ATTFC_CLONES void rowsGrad(const float* d, const float* y, float* dy, int64_t rows, int64_t c, const float* sc, const float* sh, const float* al, const float* A, const float* B, const float* C) {
  for (int64_t r = 0; r < rows; r++, d += c, y += c, dy += c)
    for (int64_t j = 0; j < c; j++) {
      float g = d[j];
      if (Act) {
        const float z = y[j] * sc[j] + sh[j];
        g *= 1.f + static_cast<float>(!(z > 0)) * (al[j] - 1.f);
      }
      dy[j] = A[j] * g + B[j] * y[j] + C[j];
    }
}

template <bool Act>
ATTFC_CLONES void planeGrad(const float* d, const float* y, float* dy, int64_t len, float sc, float sh, float al, float A, float B, float C) {
  for (int64_t i = 0; i < len; i++) {
    float g = d[i];
    if (Act) {
      const float z = y[i] * sc + sh;
      g *= 1.f + static_cast<float>(!(z > 0)) * (al - 1.f);
    }
    dy[i] = A * g + B * y[i] + C;
  }
}

// rows per parallel task: big enough to amortise a task, small enough to split 2-8 ways
int64_t rowGrain(const Layout& l) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, l.c)); }

/** Per-thread float64 partial sums, `k` arrays of C each, added up at the end. */
struct Partials {
  Partials(int64_t c, int k) : c(c), k(k), data(static_cast<size_t>(at::get_num_threads()) * c * k, 0.0) {}
  double* mine() { return data.data() + static_cast<size_t>(at::get_thread_num()) * c * k; }
  std::vector<double> total() const {
    std::vector<double> t(static_cast<size_t>(c) * k, 0.0);
    for (size_t i = 0; i < data.size(); i++) t[i % t.size()] += data[i];
    return t;
  }
  int64_t c;
  int k;
  std::vector<double> data;
};

template <bool Act>
void affineActImpl(const at::Tensor& y, const Layout& l, const float* sc, const float* sh, const float* al, float* o) {
  const float* yp = f32(y);
  if (l.channelsLast) {
    at::parallel_for(0, l.n * l.hw, rowGrain(l), [&](int64_t b, int64_t e) {
      rowsAffine<Act>(yp + b * l.c, o + b * l.c, e - b, l.c, sc, sh, al);
    });
  } else {
    at::parallel_for(0, l.n * l.c, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; p++) {
        const int64_t ch = p % l.c;
        planeAffine<Act>(yp + p * l.hw, o + p * l.hw, l.hw, sc[ch], sh[ch], Act ? al[ch] : 0.f);
      }
    });
  }
}

template <bool Act>
BackwardResult backwardImpl(const at::Tensor& dout, const at::Tensor& y, const Layout& l, const Moments& m, const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& alpha) {
  const int64_t C = l.c;
  const float* mean = f32(m.mean);
  const float* invstd = f32(m.invstd);
  const float* gm = f32(gamma);
  const float* bt = f32(beta);
  const float* al = Act ? f32(alpha) : nullptr;
  std::vector<float> sc(C), sh(C);
  for (int64_t j = 0; j < C; j++) {
    sc[j] = gm[j] * invstd[j];
    sh[j] = bt[j] - mean[j] * sc[j];
  }
  const float* dp = f32(dout);
  const float* yp = f32(y);
  Partials part(C, 3);
  if (l.channelsLast) {
    at::parallel_for(0, l.n * l.hw, rowGrain(l), [&](int64_t b, int64_t e) {
      double* s = part.mine();
      rowsGradSums<Act>(dp + b * C, yp + b * C, e - b, C, sc.data(), sh.data(), al, s, s + C, s + 2 * C);
    });
  } else {
    at::parallel_for(0, C, 1, [&](int64_t b, int64_t e) {
      double* s = part.mine();
      for (int64_t ch = b; ch < e; ch++)
        for (int64_t i = 0; i < l.n; i++) {
          const int64_t off = (i * C + ch) * l.hw;
          planeGradSums<Act>(dp + off, yp + off, l.hw, sc[ch], sh[ch], Act ? al[ch] : 0.f, s[ch], s[C + ch], s[2 * C + ch]);
        }
    });
  }
  const std::vector<double> t = part.total();
  const double M = static_cast<double>(m.count);
  BackwardResult r;
  r.dgamma = at::empty({C}, at::kFloat);
  r.dbeta = at::empty({C}, at::kFloat);
  if (Act) r.dalpha = at::empty({C}, at::kFloat);
  std::vector<float> A(C), B(C), Cc(C);
  float* dg = r.dgamma.data_ptr<float>();
  float* db = r.dbeta.data_ptr<float>();
  for (int64_t j = 0; j < C; j++) {
    const double sg = t[j], sgy = t[C + j];
    const double sgc = sgy - static_cast<double>(mean[j]) * sg;  // sum g (y - mean)
    const double dgamma = sgc * invstd[j];
    dg[j] = static_cast<float>(dgamma);
    db[j] = static_cast<float>(sg);
    if (Act) r.dalpha.data_ptr<float>()[j] = static_cast<float>(t[2 * C + j]);
    // dy = gamma invstd / M (M g - sum g - xhat dgamma), xhat = (y - mean) invstd
    const double a = static_cast<double>(gm[j]) * invstd[j];
    const double b = -a * invstd[j] * dgamma / M;
    A[j] = static_cast<float>(a);
    B[j] = static_cast<float>(b);
    Cc[j] = static_cast<float>(-a * sg / M - b * mean[j]);
  }
  r.dy = at::empty_like(y);
  float* o = r.dy.data_ptr<float>();
  if (l.channelsLast) {
    at::parallel_for(0, l.n * l.hw, rowGrain(l), [&](int64_t b, int64_t e) {
      rowsGrad<Act>(dp + b * C, yp + b * C, o + b * C, e - b, C, sc.data(), sh.data(), al, A.data(), B.data(), Cc.data());
    });
  } else {
    at::parallel_for(0, l.n * C, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; p++) {
        const int64_t ch = p % C;
        planeGrad<Act>(dp + p * l.hw, yp + p * l.hw, o + p * l.hw, l.hw, sc[ch], sh[ch], Act ? al[ch] : 0.f, A[ch], B[ch], Cc[ch]);
      }
    });
  }
  return r;
}

void checkChannels(const at::Tensor& t, int64_t c, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.numel() == c && t.is_contiguous(), "attfc fused norm: ", what, " must be float32 [", c, "]");
}

}  // namespace

Moments moments(const at::Tensor& y, double eps) {
  const Layout l = layoutOf(y, "y");
  const int64_t C = l.c;
  const float* p = f32(y);
  Partials part(C, 2);
  if (l.channelsLast) {
    at::parallel_for(0, l.n * l.hw, rowGrain(l), [&](int64_t b, int64_t e) {
      double* s = part.mine();
      rowSums(p + b * C, e - b, C, s, s + C);
    });
  } else {
    at::parallel_for(0, C, 1, [&](int64_t b, int64_t e) {
      double* s = part.mine();
      for (int64_t ch = b; ch < e; ch++)
        for (int64_t i = 0; i < l.n; i++) planeSums(p + (i * C + ch) * l.hw, l.hw, s[ch], s[C + ch]);
    });
  }
  const std::vector<double> t = part.total();
  Moments m;
  m.count = l.n * l.hw;
  m.mean = at::empty({C}, at::kFloat);
  m.invstd = at::empty({C}, at::kFloat);
  m.variance = at::empty({C}, at::kDouble);
  const double M = static_cast<double>(m.count);
  for (int64_t j = 0; j < C; j++) {
    const double mu = t[j] / M;
    const double var = std::max(0.0, t[C + j] / M - mu * mu);
    m.mean.data_ptr<float>()[j] = static_cast<float>(mu);
    m.variance.data_ptr<double>()[j] = var;
    m.invstd.data_ptr<float>()[j] = static_cast<float>(1.0 / std::sqrt(var + eps));
  }
  return m;
}

void affineAct(const at::Tensor& y, const at::Tensor& scale, const at::Tensor& shift, const at::Tensor& alpha, at::Tensor& out) {
  const Layout l = layoutOf(y, "y");
  checkChannels(scale, l.c, "scale");
  checkChannels(shift, l.c, "shift");
  if (!out.defined()) out = at::empty_like(y);
  TORCH_CHECK(out.sizes() == y.sizes() && out.strides() == y.strides(), "attfc fused norm: out must be laid out like y");
  if (alpha.defined()) {
    checkChannels(alpha, l.c, "alpha");
    affineActImpl<true>(y, l, f32(scale), f32(shift), f32(alpha), out.data_ptr<float>());
  } else {
    affineActImpl<false>(y, l, f32(scale), f32(shift), nullptr, out.data_ptr<float>());
  }
}

BackwardResult backward(const at::Tensor& dout, const at::Tensor& y, const Moments& m, const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& alpha) {
  const Layout l = layoutOf(y, "y");
  TORCH_CHECK(dout.sizes() == y.sizes(), "attfc fused norm: the gradient's shape differs from y's");
  const at::Tensor d = sameLayout(dout, l);
  checkChannels(gamma, l.c, "gamma");
  checkChannels(beta, l.c, "beta");
  if (alpha.defined()) {
    checkChannels(alpha, l.c, "alpha");
    return backwardImpl<true>(d, y, l, m, gamma, beta, alpha);
  }
  return backwardImpl<false>(d, y, l, m, gamma, beta, alpha);
}

}  // namespace attfc::fused
