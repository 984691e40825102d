// The native graph: a backbone's forward pass (and its backward pass) as one addon call, instead of one
// call per tfjs kernel. TypeScript compiles the backbone's architecture spec (src/backbones/spec.ts, the
// one definition of every backbone) into a flat program of integers (src/backbones/nativeProgram.ts);
// this file parses it, fuses conv + batch norm + PReLU into one unit, runs the units on ATen's
// convolutions and attfc's fused batch-norm kernels (fused_norm.cc), and keeps what the backward pass
// needs on a tape that lives exactly as long as the tfjs tensor handed out for it. Weights stay the tfjs
// variables' tensors (tfjs layouts; read, never written), so export and checkpoints see one set of
// weights. Inference folds every batch norm into the convolution or dense layer before it.
// Nothing here may abort the process: malformed programs and shapes are exceptions.
#include "binding.h"
#include "fused_norm.h"

#include <ATen/ATen.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace attfc;

constexpr double kEps = 1e-5;       // the backbones' batch-norm epsilon (PyTorch's default)
constexpr double kMomentum = 0.1;   // running statistics: (1 - m) running + m batch
constexpr int32_t kProgramVersion = 1;

enum Code : int32_t { kConv = 1, kBn = 2, kPrelu = 3, kResBegin = 4, kResShortcut = 5, kResEnd = 6, kFlatten = 7, kDropout = 8, kDense = 9 };

struct ConvSpec {
  int32_t w, in, out, k, stride, pad, groups;
};

struct BnSpec {
  int32_t gamma = -1, beta = -1, mean = -1, var = -1;
  bool frozen = false;
  int32_t ordinal = -1;  // position among the graph's batch norms (running statistics come back in this order)
};

struct Unit {
  enum Kind { Conv, Norm, Prelu, Residual, Flatten, Dropout, Dense } kind;
  int32_t id = -1;  // tape slot
  ConvSpec conv{};
  bool channelsLast = true;  // the memory layout a convolution runs in
  int32_t denseW = -1, denseB = -1, denseIn = 0, denseOut = 0;
  bool hasBn = false;
  BnSpec bn;
  int32_t alpha = -1;  // PReLU slopes
  int32_t mask = -1;   // Dropout: index into the call's masks
  std::vector<Unit> body, shortcut;
};

struct Graph {
  std::vector<Unit> units;
  int32_t numUnits = 0, numBn = 0, numParams = 0, numMasks = 0;
  int32_t inputSize = 0, inputChannels = 0;
};

// ---- profile: wall time per kind of work, when asked for (graphProfile) ----

enum Work {
  kConvDense, kConvPointwise, kConvDepthwise, kConvGrouped,
  kConvBackDense, kConvBackPointwise, kConvBackDepthwise, kConvBackGrouped, kPointwiseWeightGrad,
  kNormMoments, kNormApply, kNormBackward, kRunningStats, kResidualAdd, kDenseLayer, kLayoutCopy, kOther, kWorkCount
};
const char* const kWorkNames[kWorkCount] = {
  "conv forward: dense kxk", "conv forward: 1x1", "conv forward: depthwise", "conv forward: grouped",
  "conv backward: dense kxk", "conv backward: 1x1", "conv backward: depthwise", "conv backward: grouped", "conv backward: strided 1x1 weight (mm)",
  "batch norm: statistics", "batch norm + PReLU: apply", "batch norm + PReLU: backward", "batch norm: running statistics", "residual add (fwd + bwd)", "dense layer (fwd + bwd)", "layout copies", "other",
};

struct Profile {
  bool on = false;
  std::array<double, kWorkCount> ms{};
  std::array<int64_t, kWorkCount> calls{};
};
thread_local Profile profile;  // per thread: each JS thread that loads the addon runs its own graphs

struct Timed {
  Work w;
  std::chrono::steady_clock::time_point t0;
  explicit Timed(Work w) : w(w), t0(profile.on ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point()) {}
  ~Timed() {
    if (!profile.on) return;
    profile.ms[w] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    profile.calls[w]++;
  }
};

// ---- parsing ----

struct Reader {
  const int32_t* p;
  size_t n, i = 0;
  bool done() const { return i >= n; }
  int32_t peek() const { return p[i]; }
  int32_t next(const char* what) {
    if (i >= n) throw ArgError(std::string("attfc graph program: ends inside ") + what);
    return p[i++];
  }
};

struct Parser {
  Reader r;
  Graph& g;

  int32_t param(const char* what) {
    int32_t v = r.next(what);
    if (v < 0) throw ArgError(std::string("attfc graph program: negative parameter index for ") + what);
    g.numParams = std::max(g.numParams, v + 1);
    return v;
  }

  BnSpec bn() {
    BnSpec b;
    b.gamma = param("bn");
    b.beta = param("bn");
    b.mean = param("bn");
    b.var = param("bn");
    b.frozen = r.next("bn") != 0;
    b.ordinal = g.numBn++;
    return b;
  }

  // Reads units until RES_SHORTCUT, RES_END or the end, fusing conv/dense + bn + prelu.
  std::vector<Unit> sequence() {
    std::vector<Unit> out;
    while (!r.done() && r.peek() != kResShortcut && r.peek() != kResEnd) {
      const int32_t code = r.next("op");
      Unit u;
      switch (code) {
        case kConv: {
          u.kind = Unit::Conv;
          ConvSpec& c = u.conv;
          c.w = param("conv");
          c.in = r.next("conv");
          c.out = r.next("conv");
          c.k = r.next("conv");
          c.stride = r.next("conv");
          c.pad = r.next("conv");
          c.groups = r.next("conv");
          if (c.in < 1 || c.out < 1 || c.k < 1 || c.stride < 1 || c.pad < 0 || c.groups < 1 || c.in % c.groups || c.out % c.groups)
            throw ArgError("attfc graph program: invalid convolution");
          // oneDNN on this libtorch: dense k x k convolutions are as fast or faster in NCHW; 1x1,
          // grouped and depthwise ones, and the 3-channel stem, are 2-4x faster channels-last
          u.channelsLast = !(c.groups == 1 && c.k > 1 && c.in >= 16);
          break;
        }
        case kDense:
          u.kind = Unit::Dense;
          u.denseW = param("dense");
          u.denseB = r.next("dense");
          if (u.denseB >= 0) g.numParams = std::max(g.numParams, u.denseB + 1);
          u.denseIn = r.next("dense");
          u.denseOut = r.next("dense");
          break;
        case kBn:
          u.kind = Unit::Norm;
          u.hasBn = true;
          u.bn = bn();
          break;
        case kPrelu:
          u.kind = Unit::Prelu;
          u.alpha = param("prelu");
          break;
        case kResBegin: {
          u.kind = Unit::Residual;
          u.body = sequence();
          if (r.next("residual") != kResShortcut) throw ArgError("attfc graph program: residual body without its shortcut marker");
          u.shortcut = sequence();
          if (r.next("residual") != kResEnd) throw ArgError("attfc graph program: residual without its end marker");
          break;
        }
        case kFlatten:
          u.kind = Unit::Flatten;
          break;
        case kDropout:
          u.kind = Unit::Dropout;
          u.mask = r.next("dropout");
          g.numMasks = std::max(g.numMasks, u.mask + 1);
          break;
        default:
          throw ArgError("attfc graph program: unknown op code " + std::to_string(code));
      }
      // fuse: conv/dense followed by a batch norm, and a batch norm followed by a PReLU
      if ((u.kind == Unit::Conv || u.kind == Unit::Dense) && !r.done() && r.peek() == kBn) {
        r.next("bn");
        u.hasBn = true;
        u.bn = bn();
      }
      if ((u.kind == Unit::Conv || u.kind == Unit::Norm) && u.hasBn && !r.done() && r.peek() == kPrelu) {
        r.next("prelu");
        u.alpha = param("prelu");
      }
      u.id = g.numUnits++;
      out.push_back(std::move(u));
    }
    return out;
  }
};

std::shared_ptr<Graph> parse(const int32_t* p, size_t n) {
  auto g = std::make_shared<Graph>();
  if (n < 3 || p[0] != kProgramVersion) throw ArgError("attfc graph program: not a version " + std::to_string(kProgramVersion) + " program");
  g->inputSize = p[1];
  g->inputChannels = p[2];
  Parser ps{Reader{p + 3, n - 3}, *g};
  g->units = ps.sequence();
  if (!ps.r.done()) throw ArgError("attfc graph program: a residual marker outside a residual");
  return g;
}

// ---- weights between tfjs and ATen layouts ----

// tfjs filter [k, k, in, out/groups] (entry [., ., g*ci+i, o] = ATen W[g*co+o, i]) -> ATen [out, in/groups, k, k]
at::Tensor atenWeight(const at::Tensor& w, const ConvSpec& c) {
  const int64_t G = c.groups, ci = c.in / G, co = c.out / G;
  return w.reshape({c.k, c.k, G, ci, co}).permute({2, 4, 3, 0, 1}).reshape({G * co, ci, c.k, c.k});
}

// ATen weight gradient -> the tfjs filter layout, contiguous
at::Tensor tfjsFilter(const at::Tensor& dw, const ConvSpec& c) {
  const int64_t G = c.groups, ci = c.in / G, co = c.out / G;
  return dw.reshape({G, co, ci, c.k, c.k}).permute({3, 4, 0, 2, 1}).reshape({c.k, c.k, c.in, co}).contiguous();
}

at::MemoryFormat formatOf(const Unit& u) { return u.channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; }

Work convWork(const ConvSpec& c, bool backward) {
  const int kind = c.groups == 1 ? (c.k == 1 ? 1 : 0) : (c.in == c.groups ? 2 : 3);
  return static_cast<Work>((backward ? kConvBackDense : kConvDense) + kind);
}

/** t in memory format f (timed: a copy when it is not already). */
at::Tensor inFormat(const at::Tensor& t, at::MemoryFormat f) {
  Timed timed(kLayoutCopy);
  return t.contiguous(f);
}

// ---- the tape: what the backward pass needs, owned by a tfjs tensor ----

constexpr uint64_t kTapeMagic = 0x6174746663746170ULL;  // "attfctap"

struct Saved {
  at::Tensor x, y, mask;
  fused::Moments m;
  std::vector<int64_t> shape;
};

struct Tape {
  uint64_t magic = kTapeMagic;
  bool used = false;  // a backward pass ran (or failed half-way): the saved tensors are gone
  std::shared_ptr<const Graph> graph;
  std::vector<at::Tensor> params;
  std::vector<Saved> saved;
};

enum Mode { kInfer = 0, kTrainNoTape = 1, kTrainTape = 2 };

struct Forward {
  const Graph& g;
  Mode mode;
  const std::vector<at::Tensor>& params;
  const std::vector<at::Tensor>& masks;
  std::vector<at::Tensor> stats;  // new running mean and variance per batch norm (training)
  Tape* tape;

  const at::Tensor& p(int32_t i) const {
    if (i < 0 || static_cast<size_t>(i) >= params.size() || !params[i].defined())
      throw ArgError("attfc graph: parameter " + std::to_string(i) + " was not passed");
    return params[i];
  }

  Saved* slot(const Unit& u) { return tape ? &tape->saved[u.id] : nullptr; }

  // scale, shift of an inference batch norm from its running statistics
  std::pair<at::Tensor, at::Tensor> folded(const BnSpec& b) const {
    at::Tensor scale = p(b.gamma) * at::rsqrt(p(b.var) + kEps);
    at::Tensor shift = p(b.beta) - p(b.mean) * scale;
    return {scale, shift};
  }

  // training: batch statistics of y, running statistics updated, y normalised (and PReLU) into a new tensor
  at::Tensor normTrain(const at::Tensor& y, const BnSpec& b, int32_t alpha, fused::Moments& m) {
    {
      Timed t(kNormMoments);
      m = fused::moments(y, kEps);
    }
    at::Tensor out;
    {
      Timed t(kNormApply);
      at::Tensor scale = p(b.gamma) * m.invstd;
      at::Tensor shift = p(b.beta) - m.mean * scale;
      fused::affineAct(y, scale, shift, alpha >= 0 ? p(alpha) : at::Tensor(), out);
    }
    Timed t(kRunningStats);
    const double M = static_cast<double>(m.count);
    at::Tensor unbiased = (m.variance * (M > 1 ? M / (M - 1) : 1.0)).to(at::kFloat);
    stats[2 * b.ordinal] = p(b.mean) * (1 - kMomentum) + m.mean * kMomentum;
    stats[2 * b.ordinal + 1] = p(b.var) * (1 - kMomentum) + unbiased * kMomentum;
    return out;
  }

  at::Tensor run(const std::vector<Unit>& units, at::Tensor x) {
    for (const Unit& u : units) x = step(u, x);
    return x;
  }

  at::Tensor step(const Unit& u, const at::Tensor& x) {
    Saved* s = slot(u);
    switch (u.kind) {
      case Unit::Conv: {
        const ConvSpec& c = u.conv;
        if (x.dim() != 4 || x.size(1) != c.in) throw ArgError("attfc graph: a convolution expects " + std::to_string(c.in) + " input channels");
        at::Tensor xin = inFormat(x, formatOf(u));
        at::Tensor w = atenWeight(p(c.w), c);
        if (mode == kInfer && u.hasBn) {
          auto [scale, shift] = folded(u.bn);
          at::Tensor y;
          {
            Timed t(convWork(c, false));
            y = at::convolution(xin, w * scale.view({-1, 1, 1, 1}), shift, {c.stride, c.stride}, {c.pad, c.pad}, {1, 1}, false, {0, 0}, c.groups);
          }
          Timed t(kNormApply);
          if (u.alpha >= 0) fused::affineAct(y, at::ones_like(shift), at::zeros_like(shift), p(u.alpha), y);
          return y;
        }
        at::Tensor y;
        {
          Timed t(convWork(c, false));
          y = at::convolution(xin, w, {}, {c.stride, c.stride}, {c.pad, c.pad}, {1, 1}, false, {0, 0}, c.groups);
        }
        at::Tensor out = y;
        fused::Moments m;
        if (u.hasBn) out = normTrain(y, u.bn, u.alpha, m);
        if (s) {
          s->x = xin;
          if (u.hasBn) {
            s->y = y;
            s->m = m;
          }
        }
        return out;
      }
      case Unit::Norm: {
        at::Tensor xin = x.dim() == 4 && !x.is_contiguous() && !x.is_contiguous(at::MemoryFormat::ChannelsLast) ? inFormat(x, at::MemoryFormat::ChannelsLast) : x;
        if (mode == kInfer) {
          Timed t(kNormApply);
          auto [scale, shift] = folded(u.bn);
          at::Tensor out;
          fused::affineAct(xin, scale, shift, u.alpha >= 0 ? p(u.alpha) : at::Tensor(), out);
          return out;
        }
        fused::Moments m;
        at::Tensor out = normTrain(xin, u.bn, u.alpha, m);
        if (s) {
          s->y = xin;
          s->m = m;
        }
        return out;
      }
      case Unit::Prelu: {
        // a PReLU that follows no batch norm (none of attfc's backbones has one): ATen's kernel
        if (s) s->x = x;
        return at::prelu(x, p(u.alpha));
      }
      case Unit::Residual: {
        at::Tensor body = run(u.body, x);
        at::Tensor shortcut = u.shortcut.empty() ? x : run(u.shortcut, x);
        Timed t(kResidualAdd);
        return at::add(body, shortcut);
      }
      case Unit::Flatten: {
        if (s) s->shape = x.sizes().vec();
        if (x.dim() == 2) return x;
        // NHWC order (h, w, c), as tfjs flattens its NHWC tensors
        return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1});
      }
      case Unit::Dropout: {
        if (mode == kInfer || u.mask >= static_cast<int32_t>(masks.size()) || !masks[u.mask].defined()) return x;
        const at::Tensor& mask = masks[u.mask];
        if (s) s->mask = mask;
        return x * mask;
      }
      case Unit::Dense: {
        if (x.dim() != 2 || x.size(1) != u.denseIn) throw ArgError("attfc graph: a dense layer expects " + std::to_string(u.denseIn) + " inputs");
        const at::Tensor& w = p(u.denseW);
        Timed timed(kDenseLayer);
        if (mode == kInfer && u.hasBn) {
          auto [scale, shift] = folded(u.bn);
          at::Tensor bias = u.denseB >= 0 ? p(u.denseB) * scale + shift : shift;
          return at::addmm(bias, x, w * scale.view({1, -1}));
        }
        at::Tensor y = u.denseB >= 0 ? at::addmm(p(u.denseB), x, w) : at::mm(x, w);
        at::Tensor out = y;
        fused::Moments m;
        if (u.hasBn) out = normTrain(y, u.bn, -1, m);
        if (s) {
          s->x = x;
          if (u.hasBn) {
            s->y = y;
            s->m = m;
          }
        }
        return out;
      }
    }
    throw std::runtime_error("attfc graph: unknown unit");
  }
};

struct Backward {
  Tape& t;
  std::vector<at::Tensor> grads;  // by parameter index

  const at::Tensor& p(int32_t i) const { return t.params[i]; }

  // the fused batch norm (+ PReLU) backward of a unit: its parameters' gradients, and dL/dy
  at::Tensor norm(const Unit& u, const at::Tensor& d, const Saved& s) {
    Timed t(kNormBackward);
    fused::BackwardResult r = fused::backward(d, s.y, s.m, p(u.bn.gamma), p(u.bn.beta), u.alpha >= 0 ? p(u.alpha) : at::Tensor());
    if (!u.bn.frozen) grads[u.bn.gamma] = r.dgamma;
    grads[u.bn.beta] = r.dbeta;
    if (u.alpha >= 0) grads[u.alpha] = r.dalpha;
    return r.dy;
  }

  at::Tensor run(const std::vector<Unit>& units, at::Tensor d, bool needInputGrad) {
    for (size_t i = units.size(); i-- > 0;) d = step(units[i], d, needInputGrad || i > 0);
    return d;
  }

  at::Tensor step(const Unit& u, const at::Tensor& d, bool needDx) {
    Saved& s = t.saved[u.id];
    at::Tensor out;
    switch (u.kind) {
      case Unit::Conv: {
        const ConvSpec& c = u.conv;
        at::Tensor dy = d;
        if (u.hasBn) dy = norm(u, d, s);
        dy = inFormat(dy, formatOf(u));
        at::Tensor w = atenWeight(p(c.w), c);
        // libtorch 1.13's weight gradient of strided 1x1 channels-last convolutions can be wrong (and
        // write out of bounds); as a product of the pixels the filter saw and dy it is exact
        const bool stridedPointwise = c.k == 1 && c.groups == 1 && c.stride > 1;
        at::Tensor dx, dw;
        if (needDx || !stridedPointwise) {
          Timed t(convWork(c, true));
          std::tie(dx, dw, std::ignore) = at::convolution_backward(dy, s.x, w, c10::nullopt, {c.stride, c.stride}, {c.pad, c.pad}, {1, 1}, false, {0, 0}, c.groups, {needDx, !stridedPointwise, false});
        }
        if (stridedPointwise) {
          Timed t(kPointwiseWeightGrad);
          at::Tensor seen = s.x;
          if (c.pad) seen = at::constant_pad_nd(seen, {c.pad, c.pad, c.pad, c.pad}, 0);
          seen = seen.slice(2, 0, (dy.size(2) - 1) * c.stride + 1, c.stride).slice(3, 0, (dy.size(3) - 1) * c.stride + 1, c.stride);
          at::Tensor xs = seen.permute({0, 2, 3, 1}).reshape({-1, c.in});
          at::Tensor ds = dy.permute({0, 2, 3, 1}).reshape({-1, c.out});
          grads[c.w] = at::mm(xs.t(), ds).reshape({1, 1, c.in, c.out});
        } else {
          grads[c.w] = tfjsFilter(dw, c);
        }
        out = dx;
        break;
      }
      case Unit::Norm:
        out = norm(u, d, s);
        break;
      case Unit::Prelu: {
        auto [dx, da] = at::prelu_backward(d, s.x, p(u.alpha));
        grads[u.alpha] = da.reshape(p(u.alpha).sizes());
        out = dx;
        break;
      }
      case Unit::Residual: {
        at::Tensor ds = u.shortcut.empty() ? d : run(u.shortcut, d, true);
        at::Tensor db = run(u.body, d, true);
        Timed t(kResidualAdd);
        out = at::add(db, ds);
        break;
      }
      case Unit::Flatten: {
        if (s.shape.size() == 4) out = d.reshape({s.shape[0], s.shape[2], s.shape[3], s.shape[1]}).permute({0, 3, 1, 2});
        else out = d;
        break;
      }
      case Unit::Dropout:
        out = s.mask.defined() ? d * s.mask : d;
        break;
      case Unit::Dense: {
        at::Tensor dy = u.hasBn ? norm(u, d.contiguous(), s) : d;
        Timed t(kDenseLayer);
        grads[u.denseW] = at::mm(s.x.t(), dy);
        if (u.denseB >= 0) grads[u.denseB] = dy.sum(0);
        if (needDx) out = at::mm(dy, p(u.denseW).t());
        break;
      }
    }
    s = Saved();  // what this unit saved is no longer needed
    return out;
  }
};

// ---- Node-API ----

void deleteGraph(napi_env, void* data, void*) { delete static_cast<std::shared_ptr<const Graph>*>(data); }

std::shared_ptr<const Graph> graphOf(napi_env env, napi_value v) {
  if (typeOf(env, v) != napi_external) throw ArgError("attfc graph: expected a graph made by graphCreate");
  void* data = nullptr;
  check(env, napi_get_value_external(env, v, &data), "external");
  return *static_cast<std::shared_ptr<const Graph>*>(data);
}

Tape* tapeOf(const at::Tensor& t) {
  Tape* tape = t.numel() == 1 && t.scalar_type() == at::kInt ? static_cast<Tape*>(t.data_ptr()) : nullptr;
  uint64_t magic = 0;
  if (tape) std::memcpy(&magic, tape, sizeof magic);
  if (magic != kTapeMagic) throw ArgError("attfc graph: the tensor is not a graph tape");
  return tape;
}

// graphCreate(program: Int32Array) -> graph (an external)
napi_value GraphCreate(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "graphCreate");
    bool isTa;
    check(env, napi_is_typedarray(env, a[0], &isTa), "is_typedarray");
    napi_typedarray_type type;
    size_t length;
    void* data;
    napi_value ab;
    size_t offset;
    if (isTa) check(env, napi_get_typedarray_info(env, a[0], &type, &length, &data, &ab, &offset), "typedarray info");
    if (!isTa || type != napi_int32_array) throw ArgError("attfc_torch.graphCreate: expected an Int32Array program");
    auto* g = new std::shared_ptr<const Graph>(parse(static_cast<const int32_t*>(data), length));
    napi_value ext;
    napi_status st = napi_create_external(env, g, deleteGraph, nullptr, &ext);
    if (st != napi_ok) {
      delete g;
      check(env, st, "create external");
    }
    return ext;
  });
}

std::vector<at::Tensor> handleList(napi_env env, State& st, napi_value arr, const char* what) {
  uint32_t n = arrayLength(env, arr, what);
  std::vector<at::Tensor> out(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e = element(env, arr, i);
    if (!isNullish(env, e)) out[i] = getTensor(st, toInt(env, e, what));
  }
  return out;
}

// graphForward(graph, x, params[], masks[], mode) -> [y, tape | null, runningStats[]]
//   x: NHWC images [N, S, S, C]; params: every variable of the backbone by the program's indices;
//   masks: dropout multipliers by the program's mask indices (null: none); mode 0 inference (running
//   statistics, batch norms folded), 1 training without a tape, 2 training with a tape for graphBackward.
//   runningStats: the new running mean and variance of every batch norm (training modes), in program order.
napi_value GraphForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 5, "graphForward");
    State& st = state(env);
    std::shared_ptr<const Graph> g = graphOf(env, a[0]);
    at::Tensor x = getTensor(st, toInt(env, a[1], "x"));
    std::vector<at::Tensor> params = handleList(env, st, a[2], "params");
    std::vector<at::Tensor> masks = handleList(env, st, a[3], "masks");
    const int64_t mode = toInt(env, a[4], "mode");
    if (mode < 0 || mode > 2) throw ArgError("attfc_torch.graphForward: mode must be 0, 1 or 2");
    if (static_cast<int32_t>(params.size()) < g->numParams) throw ArgError("attfc_torch.graphForward: the program uses " + std::to_string(g->numParams) + " parameters, " + std::to_string(params.size()) + " given");
    if (x.dim() != 4 || x.size(1) != g->inputSize || x.size(2) != g->inputSize || x.size(3) != g->inputChannels || x.scalar_type() != at::kFloat || !x.device().is_cpu())
      throw ArgError("attfc_torch.graphForward: expected float32 CPU images [N, " + std::to_string(g->inputSize) + ", " + std::to_string(g->inputSize) + ", " + std::to_string(g->inputChannels) + "]");
    for (const at::Tensor& t : params)
      if (t.defined() && (t.scalar_type() != at::kFloat || !t.device().is_cpu())) throw ArgError("attfc_torch.graphForward: parameters must be float32 CPU tensors");
    std::unique_ptr<Tape> tape;
    if (mode == kTrainTape) {
      tape = std::make_unique<Tape>();
      tape->graph = g;
      tape->params = params;
      tape->saved.resize(g->numUnits);
    }
    Forward f{*g, static_cast<Mode>(mode), params, masks, {}, tape.get()};
    if (mode != kInfer) f.stats.resize(2 * g->numBn);
    at::Tensor y;
    {
      at::NoGradGuard noGrad;
      y = f.run(g->units, x.permute({0, 3, 1, 2}));
    }
    y = y.contiguous();
    napi_value tapeValue = makeNull(env);
    if (tape) {
      Tape* raw = tape.release();
      at::Tensor holder = at::from_blob(raw, {1}, [](void* p) { delete static_cast<Tape*>(p); }, at::TensorOptions().dtype(at::kInt));
      tapeValue = makeNumber(env, putTensor(st, holder));
    }
    std::vector<napi_value> stats;
    for (at::Tensor& t : f.stats) stats.push_back(makeNumber(env, putTensor(st, t)));
    return makeArray(env, {makeNumber(env, putTensor(st, y)), tapeValue, makeArray(env, stats)});
  });
}

// graphBackward(tape, dy, wanted[]) -> gradient handles for the parameter indices in `wanted` (null
// where the graph computes none). A tape can be used once; its saved tensors are released as it goes.
napi_value GraphBackward(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 3, "graphBackward");
    State& st = state(env);
    Tape* tape = tapeOf(getTensor(st, toInt(env, a[0], "tape")));
    at::Tensor dy = getTensor(st, toInt(env, a[1], "dy"));
    std::vector<int64_t> wanted = toIntVector(env, a[2], "wanted");
    if (tape->used) throw ArgError("attfc_torch.graphBackward: this tape was used already");
    tape->used = true;
    Backward b{*tape, std::vector<at::Tensor>(tape->params.size())};
    try {
      at::NoGradGuard noGrad;
      b.run(tape->graph->units, dy.contiguous(), false);
    } catch (...) {
      tape->saved.clear();
      tape->params.clear();
      throw;
    }
    tape->saved.clear();
    tape->params.clear();
    std::vector<napi_value> out;
    for (int64_t i : wanted) {
      if (i < 0 || static_cast<size_t>(i) >= b.grads.size()) throw ArgError("attfc_torch.graphBackward: no parameter " + std::to_string(i));
      out.push_back(b.grads[i].defined() ? makeNumber(env, putTensor(st, b.grads[i].contiguous())) : makeNull(env));
    }
    return makeArray(env, out);
  });
}

// graphProfile(on) -> { name: [ms, calls] } accumulated since the last call; `on` starts or stops timing
napi_value GraphProfile(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "graphProfile");
    napi_value r;
    check(env, napi_create_object(env, &r), "object");
    for (int w = 0; w < kWorkCount; w++)
      if (profile.calls[w]) setProp(env, r, kWorkNames[w], makeArray(env, {makeNumber(env, profile.ms[w]), makeNumber(env, static_cast<double>(profile.calls[w]))}));
    profile = Profile();
    profile.on = toDouble(env, a[0], "on") != 0;
    return r;
  });
}

ExportFunction exportGraphProfile("graphProfile", GraphProfile);
ExportFunction exportGraphCreate("graphCreate", GraphCreate);
ExportFunction exportGraphForward("graphForward", GraphForward);
ExportFunction exportGraphBackward("graphBackward", GraphBackward);

}  // namespace
