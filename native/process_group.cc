// attfc's link to PyTorch's c10d: one process group per process (Gloo on CPU tensors; NCCL when libtorch
// has CUDA and the tensors live on a GPU) over a TCPStore rendezvous, the same machinery torchrun and
// torch.distributed use, so attfc ranks join a torchrun job like Python workers do.
//
// Collectives take addon tensor handles and return NEW handles (tfjs never mutates a tensor in place).
// Async collectives return a work id; pgWait(id) blocks until the work is done and yields its result.
// Every c10d/Gloo error (a dead peer, a timeout, an unreachable store) is a JS exception carrying the
// native message; the TypeScript side (src/engine/torch/processGroup.ts) turns it into one line. A group
// that failed is never destroyed: its destructor can wait on the dead peer forever, so it is left to the
// process's exit.
#include "binding.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>

namespace {

using namespace attfc;

struct Pending {
  c10::intrusive_ptr<c10d::Work> work;
  int64_t bucket = -1;  // Flat results that are views of a persistent bucket
  // what the caller gets once the work is done
  enum Kind { Flat, Gather, Single, None } kind;
  at::Tensor flat;                       // Flat: the reduced buffer; Single: the result tensor
  std::vector<at::Tensor> parts;         // Gather: one tensor per rank
  std::vector<std::vector<int64_t>> shapes;  // Flat: the shapes to split the buffer into
};

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::string backend;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{600000};
  std::map<int64_t, Pending> pending;
  int64_t nextWork = 1;
  // persistent flat buffers for gradient buckets: Gloo on freshly allocated memory ran 6-8x slower
  // (24M floats: ~650 ms against ~90 ms on a reused buffer, in torch.distributed as here)
  std::vector<at::Tensor> buckets;
  // the views each bucket's last results handed out (a bucket is not reused while one is alive)
  std::vector<std::vector<c10::weak_intrusive_ptr<c10::TensorImpl>>> bucketViews;
  bool failed = false;
};

// Process-wide: c10d groups belong to the process, not to one JS environment.
Group* group = nullptr;

Group& current(const char* fn) {
  if (!group) throw ArgError(std::string("attfc_torch.") + fn + ": no process group (call pgInit first)");
  if (group->failed) throw std::runtime_error(std::string("attfc_torch.") + fn + ": the process group failed earlier and cannot be used");
  return *group;
}

// A collective that throws leaves the group unusable (c10d's own rule); later calls say so at once.
template <typename F>
auto collective(Group& g, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (...) {
    g.failed = true;
    throw;
  }
}

std::string getStringProp(napi_env env, napi_value obj, const char* key, const std::string& fallback) {
  bool has = false;
  check(env, napi_has_named_property(env, obj, key, &has), "has property");
  if (!has) return fallback;
  napi_value v;
  check(env, napi_get_named_property(env, obj, key, &v), "get property");
  if (isNullish(env, v)) return fallback;
  return toString(env, v, std::string("pgInit ") + key);
}

double getNumberProp(napi_env env, napi_value obj, const char* key) {
  napi_value v;
  check(env, napi_get_named_property(env, obj, key, &v), "get property");
  return toDouble(env, v, std::string("pgInit ") + key);
}

bool getBoolProp(napi_env env, napi_value obj, const char* key) {
  napi_value v;
  check(env, napi_get_named_property(env, obj, key, &v), "get property");
  return !isNullish(env, v) && toDouble(env, v, std::string("pgInit ") + key) != 0;
}

c10d::ReduceOp reduceOp(const std::string& name) {
  if (name == "sum") return c10d::ReduceOp::SUM;
  if (name == "max") return c10d::ReduceOp::MAX;
  if (name == "min") return c10d::ReduceOp::MIN;
  throw ArgError("attfc_torch: reduce op '" + name + "' (sum, max, min)");
}

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// pgInit({ rank, worldSize, host, port, hostStore, prefix, timeoutMs, backend, deviceHost, ifname })
//   rank 0 starts the TCPStore on host:port when hostStore (attfc's own launcher, a plain MASTER_ADDR
//   setup); under torchrun's agent store every rank connects as a client. `prefix` separates attempts
//   (torchrun restarts) in one store. Gloo binds to `ifname` (GLOO_SOCKET_IFNAME) or `deviceHost`, else
//   to the address this machine's hostname resolves to, as torch.distributed does.
napi_value PgInit(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "pgInit");
    if (group && !group->failed) throw ArgError("attfc_torch.pgInit: this process already belongs to a process group");
    const int rank = static_cast<int>(getNumberProp(env, a[0], "rank"));
    const int size = static_cast<int>(getNumberProp(env, a[0], "worldSize"));
    const std::string host = getStringProp(env, a[0], "host", "127.0.0.1");
    const double port = getNumberProp(env, a[0], "port");
    const bool hostStore = getBoolProp(env, a[0], "hostStore");
    const std::string prefix = getStringProp(env, a[0], "prefix", "");
    const double timeoutMs = getNumberProp(env, a[0], "timeoutMs");
    const std::string backend = getStringProp(env, a[0], "backend", "gloo");
    const std::string deviceHost = getStringProp(env, a[0], "deviceHost", "");
    const std::string ifname = getStringProp(env, a[0], "ifname", "");
    if (size < 1 || rank < 0 || rank >= size) throw ArgError("attfc_torch.pgInit: rank " + std::to_string(rank) + " of world size " + std::to_string(size));
    if (!(port >= 1 && port <= 65535)) throw ArgError("attfc_torch.pgInit: port " + std::to_string(port) + " is not a TCP port");
    if (!(timeoutMs > 0)) throw ArgError("attfc_torch.pgInit: timeoutMs must be > 0");

    auto g = std::make_unique<Group>();
    g->rank = rank;
    g->size = size;
    g->backend = backend;
    g->timeout = std::chrono::milliseconds(static_cast<int64_t>(timeoutMs));

    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = hostStore && rank == 0;
    if (so.isServer) so.numWorkers = size;
    so.waitWorkers = false;  // the process group's own rendezvous waits for everyone
    so.timeout = g->timeout;
    so.multiTenant = false;
    c10::intrusive_ptr<c10d::Store> tcp = c10::make_intrusive<c10d::TCPStore>(host, so);
    g->store = prefix.empty() ? tcp : c10::intrusive_ptr<c10d::Store>(c10::make_intrusive<c10d::PrefixStore>(prefix, tcp));

    if (backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(g->timeout);
      if (!ifname.empty()) {
        std::stringstream names(ifname);
        for (std::string name; std::getline(names, name, ',');)
          if (!name.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else if (!deviceHost.empty()) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(deviceHost));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      options->threads = static_cast<int>(options->devices.size()) * 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, size, options);
    } else if (backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = g->timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, size, options);
#else
      throw ArgError("attfc_torch.pgInit: backend nccl needs a libtorch built with CUDA and NCCL (rebuild with LIBTORCH=<a CUDA libtorch archive> npm run build:native)");
#endif
    } else {
      throw ArgError("attfc_torch.pgInit: backend '" + backend + "' (gloo, nccl)");
    }
    group = g.release();
    napi_value r;
    check(env, napi_create_object(env, &r), "object");
    setProp(env, r, "rank", makeNumber(env, rank));
    setProp(env, r, "worldSize", makeNumber(env, size));
    setProp(env, r, "backend", makeString(env, backend));
    return r;
  });
}

// The result of finished work as JS: Flat -> handles (one per input shape), Gather -> one handle
// (the ranks' tensors concatenated along dim 0), Single -> one handle, None -> undefined.
napi_value finish(napi_env env, Group& g, Pending& p) {
  collective(g, [&] {
    p.work->wait(g.timeout);
    return 0;
  });
  State& st = state(env);
  switch (p.kind) {
    case Pending::Flat: {
      std::vector<napi_value> out;
      int64_t at = 0;
      for (const auto& shape : p.shapes) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        at::Tensor part = p.flat.narrow(0, at, n).view(shape);
        if (p.bucket >= 0) g.bucketViews[p.bucket].emplace_back(part.getIntrusivePtr());
        out.push_back(makeNumber(env, putTensor(st, std::move(part))));
        at += n;
      }
      return makeArray(env, out);
    }
    case Pending::Gather:
      return makeNumber(env, putTensor(st, at::cat(p.parts, 0)));
    case Pending::Single:
      return makeNumber(env, putTensor(st, p.flat));
    default:
      return undefinedValue(env);
  }
}

// Either waits now (returns the result) or parks the work and returns its id for pgWait.
napi_value settle(napi_env env, Group& g, Pending p, bool async) {
  if (!async) return finish(env, g, p);
  int64_t id = g.nextWork++;
  g.pending.emplace(id, std::move(p));
  return makeNumber(env, static_cast<double>(id));
}

// pgAllreduce(handles[], op, async) -> handles[] (reduced copies, in the inputs' shapes) or a work id.
// The inputs are packed into one flat float buffer first: one message, like a DDP bucket.
napi_value PgAllreduce(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 3, "pgAllreduce");
    Group& g = current("pgAllreduce");
    State& st = state(env);
    uint32_t n = arrayLength(env, a[0], "pgAllreduce handles");
    if (n == 0) throw ArgError("attfc_torch.pgAllreduce: no tensors");
    std::vector<at::Tensor> flat;
    Pending p;
    p.kind = Pending::Flat;
    for (uint32_t i = 0; i < n; i++) {
      const at::Tensor& t = getTensor(st, toInt(env, element(env, a[0], i), "pgAllreduce handle"));
      if (i > 0 && t.scalar_type() != flat[0].scalar_type()) throw ArgError("attfc_torch.pgAllreduce: tensors of one bucket must share a dtype");
      p.shapes.push_back(t.sizes().vec());
      flat.push_back(t.reshape({-1}));
    }
    p.flat = n == 1 ? flat[0].clone() : at::cat(flat, 0);
    c10d::AllreduceOptions opts;
    opts.reduceOp = reduceOp(toString(env, a[1], "pgAllreduce op"));
    opts.timeout = g.timeout;
    std::vector<at::Tensor> io{p.flat};
    p.work = collective(g, [&] { return g.pg->allreduce(io, opts); });
    return settle(env, g, std::move(p), toDouble(env, a[2], "pgAllreduce async") != 0);
  });
}

// pgBucket(numel, device) -> id of a persistent float32 buffer for pgBucketAllreduce.
napi_value PgBucket(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "pgBucket");
    Group& g = current("pgBucket");
    int64_t numel = toInt(env, a[0], "pgBucket numel");
    if (numel < 1) throw ArgError("attfc_torch.pgBucket: numel must be >= 1");
    c10::Device device(toString(env, a[1], "pgBucket device"));
    g.buckets.push_back(at::empty({numel}, at::TensorOptions().dtype(at::kFloat).device(device)));
    g.bucketViews.emplace_back();
    return makeNumber(env, static_cast<double>(g.buckets.size() - 1));
  });
}

// pgBucketAllreduce(bucket, handles[], async) -> handles[] summed over the ranks, or a work id. The
// inputs are copied into the bucket's buffer and reduced in place (no inputs: the buffer as it is, one
// view of it returned); the results are VIEWS of that buffer,
// valid until the bucket is used again, which is refused while any of them is still alive.
napi_value PgBucketAllreduce(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 3, "pgBucketAllreduce");
    Group& g = current("pgBucketAllreduce");
    State& st = state(env);
    int64_t id = toInt(env, a[0], "pgBucketAllreduce bucket");
    if (id < 0 || static_cast<size_t>(id) >= g.buckets.size()) throw ArgError("attfc_torch.pgBucketAllreduce: no bucket " + std::to_string(id));
    at::Tensor& buffer = g.buckets[id];
    auto& views = g.bucketViews[id];
    for (const auto& v : views)
      if (!v.expired())
        throw std::runtime_error("attfc_torch.pgBucketAllreduce: bucket " + std::to_string(id) + " is still in use (its last results were not freed)");
    views.clear();
    uint32_t n = arrayLength(env, a[1], "pgBucketAllreduce handles");
    Pending p;
    p.kind = Pending::Flat;
    p.bucket = id;
    int64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
      const at::Tensor& t = getTensor(st, toInt(env, element(env, a[1], i), "pgBucketAllreduce handle"));
      if (t.scalar_type() != at::kFloat) throw ArgError("attfc_torch.pgBucketAllreduce: float32 tensors only");
      int64_t k = t.numel();
      if (at + k > buffer.numel()) throw ArgError("attfc_torch.pgBucketAllreduce: the tensors hold more values than bucket " + std::to_string(id));
      buffer.narrow(0, at, k).copy_(t.reshape({-1}));
      p.shapes.push_back(t.sizes().vec());
      at += k;
    }
    if (n == 0) {  // no tensors: the whole buffer as it stands, summed in place (no copy in)
      at = buffer.numel();
      p.shapes.push_back({at});
    }
    p.flat = buffer.narrow(0, 0, at);
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.timeout = g.timeout;
    std::vector<at::Tensor> io{p.flat};
    p.work = collective(g, [&] { return g.pg->allreduce(io, opts); });
    return settle(env, g, std::move(p), toDouble(env, a[2], "pgBucketAllreduce async") != 0);
  });
}

// pgAllgather(handle, async) -> handle of every rank's tensor concatenated along dim 0 (rank order), or a
// work id. Every rank must pass the same shape.
napi_value PgAllgather(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "pgAllgather");
    Group& g = current("pgAllgather");
    State& st = state(env);
    at::Tensor in = getTensor(st, toInt(env, a[0], "pgAllgather handle")).contiguous();
    Pending p;
    p.kind = Pending::Gather;
    for (int r = 0; r < g.size; r++) p.parts.push_back(at::empty_like(in));
    std::vector<std::vector<at::Tensor>> outs{p.parts};
    std::vector<at::Tensor> ins{in};
    c10d::AllgatherOptions opts;
    opts.timeout = g.timeout;
    p.work = collective(g, [&] { return g.pg->allgather(outs, ins, opts); });
    // c10d fills the tensors of `outs`, which share storage with p.parts
    return settle(env, g, std::move(p), toDouble(env, a[1], "pgAllgather async") != 0);
  });
}

// pgBroadcast(handle, root) -> a new handle holding root's values (same shape on every rank).
napi_value PgBroadcast(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "pgBroadcast");
    Group& g = current("pgBroadcast");
    State& st = state(env);
    Pending p;
    p.kind = Pending::Single;
    p.flat = getTensor(st, toInt(env, a[0], "pgBroadcast handle")).contiguous().clone();
    c10d::BroadcastOptions opts;
    opts.rootRank = static_cast<int64_t>(toInt(env, a[1], "pgBroadcast root"));
    opts.timeout = g.timeout;
    if (opts.rootRank < 0 || opts.rootRank >= g.size) throw ArgError("attfc_torch.pgBroadcast: root " + std::to_string(opts.rootRank) + " is not a rank");
    std::vector<at::Tensor> io{p.flat};
    p.work = collective(g, [&] { return g.pg->broadcast(io, opts); });
    return finish(env, g, p);
  });
}

napi_value PgBarrier(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Group& g = current("pgBarrier");
    c10d::BarrierOptions opts;
    opts.timeout = g.timeout;
    Pending p;
    p.kind = Pending::None;
    p.work = collective(g, [&] { return g.pg->barrier(opts); });
    return finish(env, g, p);
  });
}

// pgWait(id) -> the result of an async collective (see finish).
napi_value PgWait(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1, "pgWait");
    Group& g = current("pgWait");
    int64_t id = toInt(env, a[0], "pgWait id");
    auto it = g.pending.find(id);
    if (it == g.pending.end()) throw ArgError("attfc_torch.pgWait: no pending work " + std::to_string(id) + " (waited twice?)");
    Pending p = std::move(it->second);
    g.pending.erase(it);
    return finish(env, g, p);
  });
}

// pgStoreSet(key, value): a string in the rendezvous store (under the group's prefix).
napi_value PgStoreSet(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "pgStoreSet");
    if (!group) throw ArgError("attfc_torch.pgStoreSet: no process group");
    std::string key = toString(env, a[0], "pgStoreSet key");
    std::string value = toString(env, a[1], "pgStoreSet value");
    group->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    return undefinedValue(env);
  });
}

// pgStoreGet(key, timeoutMs) -> the string, or null when the key did not appear within the timeout.
napi_value PgStoreGet(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 2, "pgStoreGet");
    if (!group) throw ArgError("attfc_torch.pgStoreGet: no process group");
    std::string key = toString(env, a[0], "pgStoreGet key");
    auto wait = std::chrono::milliseconds(static_cast<int64_t>(toDouble(env, a[1], "pgStoreGet timeoutMs")));
    try {
      group->store->wait({key}, wait);
    } catch (const std::exception&) {
      return makeNull(env);
    }
    std::vector<uint8_t> v = group->store->get(key);
    return makeString(env, std::string(v.begin(), v.end()));
  });
}

// pgDestroy(): leaves the group after a clean finish (every rank calls it after its last collective).
// A failed group is abandoned instead: tearing it down can block on the dead peer.
napi_value PgDestroy(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    if (group && !group->failed) {
      group->pending.clear();
      group->buckets.clear();
      group->bucketViews.clear();
      delete group;
    }
    group = nullptr;
    return undefinedValue(env);
  });
}

ExportFunction exportPgInit("pgInit", PgInit);
ExportFunction exportPgAllreduce("pgAllreduce", PgAllreduce);
ExportFunction exportPgBucket("pgBucket", PgBucket);
ExportFunction exportPgBucketAllreduce("pgBucketAllreduce", PgBucketAllreduce);
ExportFunction exportPgAllgather("pgAllgather", PgAllgather);
ExportFunction exportPgBroadcast("pgBroadcast", PgBroadcast);
ExportFunction exportPgBarrier("pgBarrier", PgBarrier);
ExportFunction exportPgWait("pgWait", PgWait);
ExportFunction exportPgStoreSet("pgStoreSet", PgStoreSet);
ExportFunction exportPgStoreGet("pgStoreGet", PgStoreGet);
ExportFunction exportPgDestroy("pgDestroy", PgDestroy);

}  // namespace
