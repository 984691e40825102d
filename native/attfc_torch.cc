// attfc_torch: a Node-API addon that keeps tensors in libtorch memory and runs ATen operators on them.
//
// The surface is deliberately small, like tfjs-node's binding: a tensor table (integer handle ->
// at::Tensor), copies in and out of JS typed arrays, and one generic path that calls any ATen operator
// through the dispatcher, converting JS arguments by the operator's schema. Every kernel's attribute
// mapping lives in TypeScript (src/engine/torch/kernels). Nothing here may abort the process: every
// c10::Error and std::exception becomes a JS exception carrying libtorch's message. This file defines
// the module; other native/*.cc files add exports of their own through binding.h's ExportFunction.
#include "binding.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/util/Exception.h>

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#ifndef ATTFC_LIBTORCH_VERSION
#define ATTFC_LIBTORCH_VERSION TORCH_VERSION
#endif
#define ATTFC_STR2(x) #x
#define ATTFC_STR(x) ATTFC_STR2(x)

namespace {

using namespace attfc;

// ---- dtype and enum names shared with TypeScript ----

at::ScalarType scalarTypeFromName(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "int32") return at::kInt;
  if (s == "bool") return at::kBool;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "uint8") return at::kByte;
  throw ArgError("attfc_torch: unknown dtype '" + s + "' (float32, int32, bool, float64, int64, uint8)");
}

std::string scalarTypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kByte: return "uint8";
    default: return c10::toString(t);
  }
}

int64_t enumFromName(const std::string& s) {
  if (s == "contiguous") return static_cast<int64_t>(at::MemoryFormat::Contiguous);
  if (s == "channels_last") return static_cast<int64_t>(at::MemoryFormat::ChannelsLast);
  if (s == "preserve") return static_cast<int64_t>(at::MemoryFormat::Preserve);
  if (s == "strided") return static_cast<int64_t>(at::kStrided);
  return static_cast<int64_t>(scalarTypeFromName(s));
}

// ---- schema-driven argument conversion ----

c10::IValue toIValue(napi_env env, State& st, napi_value v, const c10::TypePtr& type, const std::string& what);

c10::IValue toListIValue(napi_env env, State& st, napi_value v, const c10::ListTypePtr& lt, const std::string& what) {
  const c10::TypePtr& elem = lt->getElementType();
  uint32_t n = arrayLength(env, v, what);
  switch (elem->kind()) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: {
      c10::List<int64_t> l;
      l.reserve(n);
      for (uint32_t i = 0; i < n; i++) l.push_back(toInt(env, element(env, v, i), what));
      return l;
    }
    case c10::TypeKind::BoolType: {
      c10::List<bool> l;
      for (uint32_t i = 0; i < n; i++) l.push_back(toDouble(env, element(env, v, i), what) != 0);
      return l;
    }
    case c10::TypeKind::FloatType: {
      c10::List<double> l;
      for (uint32_t i = 0; i < n; i++) l.push_back(toDouble(env, element(env, v, i), what));
      return l;
    }
    case c10::TypeKind::TensorType: {
      c10::List<at::Tensor> l;
      l.reserve(n);
      for (uint32_t i = 0; i < n; i++) l.push_back(getTensor(st, toInt(env, element(env, v, i), what)));
      return l;
    }
    case c10::TypeKind::OptionalType: {
      c10::List<c10::optional<at::Tensor>> l;
      for (uint32_t i = 0; i < n; i++) {
        napi_value e = element(env, v, i);
        if (isNullish(env, e)) l.push_back(c10::nullopt);
        else l.push_back(getTensor(st, toInt(env, e, what)));
      }
      return l;
    }
    default:
      throw ArgError(what + ": list of " + elem->str() + " is not supported by attfc_torch");
  }
}

c10::IValue toIValue(napi_env env, State& st, napi_value v, const c10::TypePtr& type, const std::string& what) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return getTensor(st, toInt(env, v, what));
    case c10::TypeKind::OptionalType:
      if (isNullish(env, v)) return c10::IValue();
      return toIValue(env, st, v, type->expectRef<c10::OptionalType>().getElementType(), what);
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      // ScalarType, MemoryFormat and Layout are ints in schemas; TypeScript passes their names
      if (typeOf(env, v) == napi_string) return enumFromName(toString(env, v, what));
      return toInt(env, v, what);
    case c10::TypeKind::FloatType:
      return toDouble(env, v, what);
    case c10::TypeKind::BoolType:
      return toDouble(env, v, what) != 0;
    case c10::TypeKind::NumberType: {
      // Scalar: whole numbers stay integral so that int32 tensors are not promoted to float
      if (typeOf(env, v) == napi_boolean) return at::Scalar(toDouble(env, v, what) != 0);
      double d = toDouble(env, v, what);
      if (std::abs(d) < 9007199254740992.0 && d == static_cast<double>(static_cast<int64_t>(d)))
        return at::Scalar(static_cast<int64_t>(d));
      return at::Scalar(d);
    }
    case c10::TypeKind::StringType:
      return toString(env, v, what);
    case c10::TypeKind::DeviceObjType:
      return c10::Device(toString(env, v, what));
    case c10::TypeKind::ListType:
      return toListIValue(env, st, v, type->expect<c10::ListType>(), what);
    default:
      throw ArgError(what + ": argument type " + type->str() + " is not supported by attfc_torch");
  }
}

napi_value fromIValue(napi_env env, State& st, const c10::IValue& v) {
  // an undefined tensor (a gradient not asked for in an output mask) is null
  if (v.isTensor()) return v.toTensor().defined() ? makeNumber(env, putTensor(st, v.toTensor())) : makeNull(env);
  if (v.isTensorList()) {
    std::vector<napi_value> items;
    for (const at::Tensor& t : v.toTensorVector()) items.push_back(t.defined() ? makeNumber(env, putTensor(st, t)) : makeNull(env));
    return makeArray(env, items);
  }
  if (v.isNone()) return makeNull(env);
  if (v.isInt()) return makeNumber(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return makeNumber(env, v.toDouble());
  if (v.isBool()) return makeBool(env, v.toBool());
  if (v.isIntList()) {
    std::vector<napi_value> items;
    for (int64_t x : v.toIntVector()) items.push_back(makeNumber(env, static_cast<double>(x)));
    return makeArray(env, items);
  }
  if (v.isTuple()) {
    std::vector<napi_value> items;
    for (const c10::IValue& e : v.toTupleRef().elements()) items.push_back(fromIValue(env, st, e));
    return makeArray(env, items);
  }
  throw std::runtime_error(std::string("attfc_torch: cannot return a value of type ") + v.tagKind());
}

// ---- exported functions ----

// fromArray(typedArray, shape[], dtype, device) -> handle; copies the values (JS may reuse its buffer)
napi_value FromArray(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4, "fromArray");
    State& st = state(env);
    bool isTa;
    check(env, napi_is_typedarray(env, a[0], &isTa), "is_typedarray");
    if (!isTa) throw ArgError("attfc_torch.fromArray: expected a typed array");
    napi_typedarray_type taType;
    size_t length;
    void* data;
    napi_value ab;
    size_t offset;
    check(env, napi_get_typedarray_info(env, a[0], &taType, &length, &data, &ab, &offset), "typedarray info");
    std::vector<int64_t> shape = toIntVector(env, a[1], "fromArray shape");
    at::ScalarType dtype = scalarTypeFromName(toString(env, a[2], "fromArray dtype"));
    c10::Device device(toString(env, a[3], "fromArray device"));
    size_t elemBytes = c10::elementSize(dtype);
    size_t taElemBytes;
    switch (taType) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: taElemBytes = 1; break;
      case napi_int16_array: case napi_uint16_array: taElemBytes = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: taElemBytes = 4; break;
      default: taElemBytes = 8;
    }
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    if (taElemBytes != elemBytes || static_cast<int64_t>(length) != numel)
      throw ArgError("attfc_torch.fromArray: " + std::to_string(length) + " values of " + std::to_string(taElemBytes) +
                     " bytes for shape of " + std::to_string(numel) + " " + scalarTypeName(dtype) + " values");
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (numel > 0) std::memcpy(t.data_ptr(), data, numel * elemBytes);
    if (!device.is_cpu()) t = t.to(device);
    return makeNumber(env, putTensor(st, std::move(t)));
  });
}

void deleteTensorBox(napi_env, void*, void* hint) { delete static_cast<at::Tensor*>(hint); }

// toArray(handle) -> Float32Array | Int32Array | Uint8Array over a contiguous CPU copy
napi_value ToArray(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "toArray");
    State& st = state(env);
    at::Tensor t = getTensor(st, toInt(env, a[0], "handle"));
    napi_typedarray_type taType;
    switch (t.scalar_type()) {
      case at::kFloat: taType = napi_float32_array; break;
      case at::kInt: taType = napi_int32_array; break;
      case at::kBool: case at::kByte: taType = napi_uint8_array; break;
      case at::kDouble: taType = napi_float64_array; break;
      case at::kLong: taType = napi_bigint64_array; break;
      default: throw std::runtime_error("attfc_torch.toArray: dtype " + scalarTypeName(t.scalar_type()) + " cannot be read");
    }
    // a fresh contiguous CPU tensor owned by the ArrayBuffer: no second copy into JS memory
    at::Tensor* owned = new at::Tensor(t.to(at::kCPU).contiguous());
    if (owned->is_same(t)) *owned = t.clone();
    size_t bytes = owned->numel() * owned->element_size();
    napi_value ab, ta;
    napi_status s = napi_generic_failure;
    if (bytes > 0) s = napi_create_external_arraybuffer(env, owned->data_ptr(), bytes, deleteTensorBox, owned, &ab);
    if (s != napi_ok) {
      // empty tensors, and runtimes that forbid external buffers: a plain copy
      delete owned;
      at::Tensor c = t.to(at::kCPU).contiguous();
      void* dst;
      check(env, napi_create_arraybuffer(env, bytes, &dst, &ab), "create arraybuffer");
      if (bytes) std::memcpy(dst, c.data_ptr(), bytes);
    }
    check(env, napi_create_typedarray(env, taType, bytes / std::max<size_t>(1, c10::elementSize(t.scalar_type())), ab, 0, &ta), "create typedarray");
    return ta;
  });
}

// free(handle): releases the table's reference (storage shared with views stays alive)
napi_value Free(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "free");
    State& st = state(env);
    int64_t h = toInt(env, a[0], "handle");
    getTensor(st, h) = at::Tensor();
    st.freeHandles.push_back(static_cast<int32_t>(h));
    st.live--;
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  });
}

// meta(handle) -> [dtype, ...shape]
napi_value Meta(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "meta");
    State& st = state(env);
    const at::Tensor& t = getTensor(st, toInt(env, a[0], "handle"));
    std::vector<napi_value> items{makeString(env, scalarTypeName(t.scalar_type()))};
    for (int64_t d : t.sizes()) items.push_back(makeNumber(env, static_cast<double>(d)));
    return makeArray(env, items);
  });
}

// op(name, overload) -> id for call(); throws when libtorch has no such operator
napi_value Op(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "op");
    State& st = state(env);
    std::string name = toString(env, a[0], "op name");
    std::string overload = toString(env, a[1], "op overload");
    st.ops.push_back(c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), overload.c_str()));
    return makeNumber(env, static_cast<double>(st.ops.size() - 1));
  });
}

// schema(id) -> the operator's schema as text (for error messages and debugging)
napi_value Schema(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "schema");
    State& st = state(env);
    int64_t id = toInt(env, a[0], "op id");
    if (id < 0 || static_cast<size_t>(id) >= st.ops.size()) throw ArgError("attfc_torch.schema: unknown op id");
    std::ostringstream os;
    os << st.ops[id].schema();
    return makeString(env, os.str());
  });
}

// call(id, args[]) -> the operator's results: a handle per tensor, numbers, or an array of them.
// Arguments are positional; missing trailing ones take the schema's defaults.
napi_value Call(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "call");
    State& st = state(env);
    int64_t id = toInt(env, a[0], "op id");
    if (id < 0 || static_cast<size_t>(id) >= st.ops.size()) throw ArgError("attfc_torch.call: unknown op id");
    const c10::OperatorHandle& op = st.ops[id];
    const c10::FunctionSchema& schema = op.schema();
    const auto& formal = schema.arguments();
    uint32_t given = arrayLength(env, a[1], "call args");
    if (given > formal.size())
      throw ArgError(schema.name() + ": " + std::to_string(given) + " arguments given, the schema takes " + std::to_string(formal.size()));
    torch::jit::Stack stack;
    stack.reserve(formal.size());
    for (size_t i = 0; i < formal.size(); i++) {
      napi_value v = nullptr;
      bool present = false;
      if (i < given) {
        v = element(env, a[1], static_cast<uint32_t>(i));
        napi_valuetype t = typeOf(env, v);
        present = t != napi_undefined;
      }
      if (present) {
        stack.push_back(toIValue(env, st, v, formal[i].type(), schema.name() + " argument '" + formal[i].name() + "'"));
      } else if (formal[i].default_value()) {
        stack.push_back(*formal[i].default_value());
      } else {
        throw ArgError(schema.name() + ": argument '" + formal[i].name() + "' is required");
      }
    }
    op.callBoxed(&stack);
    if (stack.size() == 1) return fromIValue(env, st, stack[0]);
    std::vector<napi_value> items;
    for (const c10::IValue& r : stack) items.push_back(fromIValue(env, st, r));
    return makeArray(env, items);
  });
}

// memory() -> { handles, bytes }: bytes of the distinct storages behind live handles
napi_value Memory(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    State& st = state(env);
    std::unordered_set<const void*> seen;
    double bytes = 0;
    for (const at::Tensor& t : st.tensors) {
      if (!t.defined() || !t.has_storage()) continue;
      const c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
      if (seen.insert(s).second) bytes += static_cast<double>(s->nbytes());
    }
    napi_value r;
    check(env, napi_create_object(env, &r), "object");
    setProp(env, r, "handles", makeNumber(env, static_cast<double>(st.live)));
    setProp(env, r, "bytes", makeNumber(env, bytes));
    return r;
  });
}

// ---- AttFC: the element-wise part of the chunked DCC softmax, fused into one pass per row ----

// dccRows(z, s) -> [rowMax, rowSum]. z is a chunk's [B, c] cosines with masked slots at -inf. Per row i:
//   rowMax_i = max_j z_ij (raw; -inf when every slot is masked), m_i = clamp(rowMax_i, -1, 1),
//   rowSum_i = sum_j exp(s * (clamp(z_ij, -1, 1) - m_i))   (float64),
// and z_ij is overwritten with that term where -1 <= z_ij <= 1 (the gradient weight) and 0 elsewhere
// (clamped and masked slots pass no gradient). The shift by m_i keeps every term in (0, 1].
napi_value DccRows(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "dccRows");
    State& st = state(env);
    at::Tensor& z = getTensor(st, toInt(env, a[0], "z"));
    double s = toDouble(env, a[1], "scale");
    if (z.dim() != 2 || z.scalar_type() != at::kFloat || !z.is_contiguous() || !z.device().is_cpu())
      throw ArgError("attfc_torch.dccRows: z must be a contiguous float32 CPU matrix");
    const int64_t rows = z.size(0), cols = z.size(1);
    at::Tensor rowMax = at::empty({rows}, at::kFloat);
    at::Tensor rowSum = at::empty({rows}, at::kDouble);
    float* zp = z.data_ptr<float>();
    float* mp = rowMax.data_ptr<float>();
    double* sp = rowSum.data_ptr<double>();
    const float sf = static_cast<float>(s);
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; i++) {
        float* r = zp + i * cols;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < cols; j++) mx = std::max(mx, r[j]);
        const float m = std::min(1.0f, std::max(-1.0f, mx));
        double sum = 0;
        for (int64_t j = 0; j < cols; j++) {
          const float v = r[j];
          const float c = std::min(1.0f, std::max(-1.0f, v));
          const float e = std::exp(sf * (c - m));
          sum += e;
          r[j] = (v == c) ? e : 0.0f;
        }
        mp[i] = mx;
        sp[i] = sum;
      }
    });
    return makeArray(env, {makeNumber(env, putTensor(st, rowMax)), makeNumber(env, putTensor(st, rowSum))});
  });
}

// ---- SGD: PyTorch's update in one pass (the op-by-op form reads and writes every weight five times) ----

// sgdStep(w, g, v, lr, momentum, weightDecay) -> [w', v'] (new tensors): v' = mu v + (g + wd w),
// w' = w - lr v'. All three float32, contiguous, CPU, of one size.
napi_value SgdStep(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 6, "sgdStep");
    State& st = state(env);
    at::Tensor w = getTensor(st, toInt(env, a[0], "w")).contiguous();
    at::Tensor g = getTensor(st, toInt(env, a[1], "g")).contiguous();
    at::Tensor v = getTensor(st, toInt(env, a[2], "v")).contiguous();
    const float lr = static_cast<float>(toDouble(env, a[3], "lr"));
    const float mu = static_cast<float>(toDouble(env, a[4], "momentum"));
    const float wd = static_cast<float>(toDouble(env, a[5], "weightDecay"));
    for (const at::Tensor* t : {&w, &g, &v})
      if (t->scalar_type() != at::kFloat || !t->device().is_cpu() || t->numel() != w.numel())
        throw ArgError("attfc_torch.sgdStep: w, g and v must be float32 CPU tensors of one size");
    at::Tensor w2 = at::empty_like(w), v2 = at::empty_like(v);
    const float *wp = w.data_ptr<float>(), *gp = g.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *w2p = w2.data_ptr<float>(), *v2p = v2.data_ptr<float>();
    at::parallel_for(0, w.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; i++) {
        const float vv = mu * vp[i] + (gp[i] + wd * wp[i]);
        v2p[i] = vv;
        w2p[i] = wp[i] - lr * vv;
      }
    });
    return makeArray(env, {makeNumber(env, putTensor(st, w2)), makeNumber(env, putTensor(st, v2))});
  });
}

// ---- BLAS detection: libtorch from Debian calls whatever libblas.so.3 the system selects ----

int findBlasLib(struct dl_phdr_info* info, size_t, void* out) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("libblas.so") != std::string::npos || name.find("libopenblas") != std::string::npos ||
      name.find("libmkl") != std::string::npos || name.find("libblis") != std::string::npos) {
    char resolved[PATH_MAX];
    if (realpath(name.c_str(), resolved)) name = resolved;
    *static_cast<std::string*>(out) = name;
    return 1;
  }
  return 0;
}

std::string blasName(std::string& path, std::string& detail) {
  std::string config = at::show_config();
  if (config.find("BLAS_INFO=mkl") != std::string::npos) return "mkl";
  dl_iterate_phdr(findBlasLib, &path);
  using CfgFn = char* (*)();
  if (auto cfg = reinterpret_cast<CfgFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    detail = cfg();
    return "openblas";
  }
  if (path.find("openblas") != std::string::npos) return "openblas";
  if (path.find("blis") != std::string::npos) return "blis";
  if (path.find("mkl") != std::string::npos) return "mkl";
  if (path.find("/blas/libblas") != std::string::npos) return "reference";
  return path.empty() ? "unknown" : "other";
}

void setBlasThreads(int n) {
  using SetFn = void (*)(int);
  if (auto f = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

// info() -> { version, cuda, cudaDevices, mkldnn, openmp, blas, blasPath, blasDetail, config }
napi_value Info(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    napi_value r;
    check(env, napi_create_object(env, &r), "object");
    std::string path, detail;
    std::string blas = blasName(path, detail);
    setProp(env, r, "version", makeString(env, ATTFC_STR(ATTFC_LIBTORCH_VERSION)));
    bool cuda = at::hasCUDA();
    setProp(env, r, "cuda", makeBool(env, cuda));
    setProp(env, r, "cudaDevices", makeNumber(env, cuda ? static_cast<double>(at::getNumGPUs()) : 0));
    setProp(env, r, "mkldnn", makeBool(env, at::hasMKLDNN()));
    setProp(env, r, "openmp", makeBool(env, at::hasOpenMP()));
    setProp(env, r, "blas", makeString(env, blas));
    setProp(env, r, "blasPath", makeString(env, path));
    setProp(env, r, "blasDetail", makeString(env, detail));
    setProp(env, r, "config", makeString(env, at::show_config()));
    return r;
  });
}

// setThreads(n): libtorch's intra-op threads (and OpenBLAS's own pool, which libtorch does not size)
napi_value SetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "setThreads");
    int64_t n = toInt(env, a[0], "threads");
    if (n < 1) throw ArgError("attfc_torch.setThreads: expected a whole number >= 1");
    at::set_num_threads(static_cast<int>(n));
    setBlasThreads(static_cast<int>(n));
    return makeNumber(env, at::get_num_threads());
  });
}

napi_value GetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&] { return makeNumber(env, at::get_num_threads()); });
}

void finalizeState(napi_env, void* data, void*) { delete static_cast<State*>(data); }

ExportFunction exportFromArray("fromArray", FromArray);
ExportFunction exportToArray("toArray", ToArray);
ExportFunction exportFree("free", Free);
ExportFunction exportMeta("meta", Meta);
ExportFunction exportOp("op", Op);
ExportFunction exportSchema("schema", Schema);
ExportFunction exportCall("call", Call);
ExportFunction exportMemory("memory", Memory);
ExportFunction exportInfo("info", Info);
ExportFunction exportSetThreads("setThreads", SetThreads);
ExportFunction exportGetThreads("getThreads", GetThreads);
ExportFunction exportDccRows("dccRows", DccRows);
ExportFunction exportSgdStep("sgdStep", SgdStep);

napi_value Init(napi_env env, napi_value exports) {
  napi_set_instance_data(env, new State(), finalizeState, nullptr);
  std::vector<napi_property_descriptor> props;
  for (const ExportEntry& e : exportTable())
    props.push_back({e.name, nullptr, e.fn, nullptr, nullptr, nullptr, napi_default, nullptr});
  napi_define_properties(env, exports, props.size(), props.data());
  return exports;
}

}  // namespace

NAPI_MODULE(attfc_torch, Init)
