// The binding's shared plumbing: the per-environment tensor table, JS value conversions, error
// translation, and the list of exported functions that each source file adds to. Every native/*.cc file
// includes this; native/attfc_torch.cc defines the module. Nothing here may abort the process.
#pragma once
#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace attfc {

// ---- per-environment state (the main thread and each worker thread get their own table) ----

struct State {
  std::vector<at::Tensor> tensors;  // handle -> tensor (undefined when free)
  std::vector<int32_t> freeHandles;
  size_t live = 0;
  std::vector<c10::OperatorHandle> ops;
};

// Thrown for mistakes on the JS side of the binding (wrong argument types); becomes a TypeError.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline State& state(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return *static_cast<State*>(data);
}

inline void check(napi_env env, napi_status s, const char* what) {
  if (s != napi_ok) {
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env, &info);
    throw std::runtime_error(std::string("attfc_torch: ") + what + ": " +
                             (info && info->error_message ? info->error_message : "Node-API call failed"));
  }
}

inline int32_t putTensor(State& st, at::Tensor t) {
  int32_t h;
  if (!st.freeHandles.empty()) {
    h = st.freeHandles.back();
    st.freeHandles.pop_back();
    st.tensors[h] = std::move(t);
  } else {
    if (st.tensors.size() >= static_cast<size_t>(INT32_MAX)) throw std::runtime_error("attfc_torch: tensor table full");
    h = static_cast<int32_t>(st.tensors.size());
    st.tensors.push_back(std::move(t));
  }
  st.live++;
  return h;
}

inline at::Tensor& getTensor(State& st, int64_t h) {
  if (h < 0 || static_cast<size_t>(h) >= st.tensors.size() || !st.tensors[h].defined())
    throw ArgError("attfc_torch: tensor handle " + std::to_string(h) + " is not live (disposed twice?)");
  return st.tensors[h];
}

// ---- JS value helpers ----

inline napi_valuetype typeOf(napi_env env, napi_value v) {
  napi_valuetype t;
  check(env, napi_typeof(env, v, &t), "typeof");
  return t;
}

inline bool isNullish(napi_env env, napi_value v) {
  napi_valuetype t = typeOf(env, v);
  return t == napi_null || t == napi_undefined;
}

inline double toDouble(napi_env env, napi_value v, const std::string& what) {
  napi_valuetype t = typeOf(env, v);
  if (t == napi_boolean) {
    bool b;
    check(env, napi_get_value_bool(env, v, &b), "bool");
    return b ? 1 : 0;
  }
  if (t != napi_number) throw ArgError(what + ": expected a number");
  double d;
  check(env, napi_get_value_double(env, v, &d), "double");
  return d;
}

inline int64_t toInt(napi_env env, napi_value v, const std::string& what) {
  double d = toDouble(env, v, what);
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) throw ArgError(what + ": expected a whole number, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

inline std::string toString(napi_env env, napi_value v, const std::string& what) {
  if (typeOf(env, v) != napi_string) throw ArgError(what + ": expected a string");
  size_t n;
  check(env, napi_get_value_string_utf8(env, v, nullptr, 0, &n), "string length");
  std::string s(n, '\0');
  check(env, napi_get_value_string_utf8(env, v, s.data(), n + 1, &n), "string");
  return s;
}

inline uint32_t arrayLength(napi_env env, napi_value v, const std::string& what) {
  bool isArr;
  check(env, napi_is_array(env, v, &isArr), "is_array");
  if (!isArr) throw ArgError(what + ": expected an array");
  uint32_t n;
  check(env, napi_get_array_length(env, v, &n), "array length");
  return n;
}

inline napi_value element(napi_env env, napi_value arr, uint32_t i) {
  napi_value e;
  check(env, napi_get_element(env, arr, i, &e), "get element");
  return e;
}

inline std::vector<int64_t> toIntVector(napi_env env, napi_value v, const std::string& what) {
  uint32_t n = arrayLength(env, v, what);
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) out[i] = toInt(env, element(env, v, i), what + "[" + std::to_string(i) + "]");
  return out;
}

inline napi_value makeNumber(napi_env env, double d) {
  napi_value r;
  check(env, napi_create_double(env, d, &r), "create number");
  return r;
}

inline napi_value makeString(napi_env env, const std::string& s) {
  napi_value r;
  check(env, napi_create_string_utf8(env, s.c_str(), s.size(), &r), "create string");
  return r;
}

inline napi_value makeBool(napi_env env, bool b) {
  napi_value r;
  check(env, napi_get_boolean(env, b, &r), "create bool");
  return r;
}

inline napi_value makeNull(napi_env env) {
  napi_value r;
  check(env, napi_get_null(env, &r), "null");
  return r;
}

inline napi_value makeArray(napi_env env, const std::vector<napi_value>& items) {
  napi_value arr;
  check(env, napi_create_array_with_length(env, items.size(), &arr), "create array");
  for (size_t i = 0; i < items.size(); i++) check(env, napi_set_element(env, arr, i, items[i]), "set element");
  return arr;
}

inline void setProp(napi_env env, napi_value obj, const char* key, napi_value v) {
  check(env, napi_set_named_property(env, obj, key, v), "set property");
}

// ---- error translation ----

template <typename F>
inline napi_value guarded(napi_env env, F&& f) {
  try {
    return f();
  } catch (const ArgError& e) {
    napi_throw_type_error(env, nullptr, e.what());
  } catch (const c10::Error& e) {
    napi_throw_error(env, nullptr, e.what_without_backtrace());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  } catch (...) {
    napi_throw_error(env, nullptr, "attfc_torch: unknown C++ exception");
  }
  return nullptr;
}

inline std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected, const char* fn) {
  size_t argc = expected;
  std::vector<napi_value> argv(expected);
  check(env, napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr), "cb info");
  if (argc < expected) throw ArgError(std::string("attfc_torch.") + fn + ": expected " + std::to_string(expected) + " arguments");
  return argv;
}

// ---- exported functions: each source file registers its own at load time ----

struct ExportEntry {
  const char* name;
  napi_callback fn;
};

// The functions the module exports (filled by ExportFunction objects before Init runs).
inline std::vector<ExportEntry>& exportTable() {
  static std::vector<ExportEntry> table;
  return table;
}

// `static attfc::ExportFunction e("name", Fn);` at namespace scope adds Fn to the module's exports.
struct ExportFunction {
  ExportFunction(const char* name, napi_callback fn) { exportTable().push_back({name, fn}); }
};

}  // namespace attfc
