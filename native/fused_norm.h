// Batch norm with an optional PReLU after it, as two passes over memory each way, for activations in
// NCHW or channels-last memory ([N, C] counts as channels-last with one pixel). The native graph
// (graph_step.cc) runs every batch norm of a backbone through these: ATen's native_batch_norm,
// prelu and their backward kernels make five passes forward and seven backward for the same work, and
// ATen 1.13's prelu_backward alone was a quarter of a MobileFaceNet step in PyTorch's own profile.
#pragma once
#include <ATen/ATen.h>

namespace attfc::fused {

/** Per-channel statistics of a training batch norm's input. */
struct Moments {
  at::Tensor mean;      // float32 [C]
  at::Tensor invstd;    // float32 [C]: 1 / sqrt(var + eps)
  at::Tensor variance;  // float64 [C]: the biased batch variance
  int64_t count;        // values per channel (N x H x W)
};

/** Mean and biased variance per channel (axis 1) of y. */
Moments moments(const at::Tensor& y, double eps);

/**
 * out = act(y * scale + shift) with per-channel float32 scale and shift; act is PReLU with per-channel
 * slopes `alpha` when it is defined, else the identity. `out` may be y itself (in place).
 */
void affineAct(const at::Tensor& y, const at::Tensor& scale, const at::Tensor& shift, const at::Tensor& alpha, at::Tensor& out);

/** Gradients of out = act(gamma * (y - mean) * invstd + beta) with the batch statistics of y. */
struct BackwardResult {
  at::Tensor dy;      // like y
  at::Tensor dgamma;  // [C]
  at::Tensor dbeta;   // [C]
  at::Tensor dalpha;  // [C], undefined without act
};

BackwardResult backward(const at::Tensor& dout, const at::Tensor& y, const Moments& m, const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& alpha);

}  // namespace attfc::fused
