// A caching allocator for libtorch's CPU tensors, installed when the addon loads.
//
// glibc serves every block above 32 MiB (and, once it has trimmed its heap, smaller ones too) with a
// fresh mmap, so each such tensor pays one page fault per 4 KiB page on first touch and the kernel zeroes
// every page: a MobileFaceNet step at 112x112 and batch 32 allocates and frees hundreds of 12-50 MB
// activations, and those faults were a third of its time (system time, measured). Training steps
// allocate the same sizes over and over, so freed blocks of 1 MiB and more are kept, with their pages
// mapped, and handed out again for requests of nearly the same size. The cache of free blocks is bounded
// (ATTFC_TORCH_CACHE_MIB, default a quarter of RAM up to 8 GiB; 0 turns the cache off) and is emptied
// when an allocation fails. It must never change a value (blocks are not cleared, as malloc's are not)
// and never abort: a failed allocation becomes libtorch's out-of-memory error.
#include "binding.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace {

using namespace attfc;

constexpr size_t kAlign = 64;            // oneDNN and ATen's vectorised kernels want 64-byte alignment
constexpr size_t kHeader = kAlign;       // the block's capacity sits just before the data
constexpr size_t kMinCached = 1 << 20;   // smaller blocks go straight to malloc (its heap serves them)
constexpr size_t kUncached = 0;          // header value of a block that is freed at once

struct Header {
  size_t capacity;  // usable bytes after the header (kUncached for small blocks: freed, not cached)
};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t limit) : limit_(limit) {}

  c10::DataPtr allocate(size_t n) const override {
    void* data = allocateRaw(n);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // Frees every cached block (the memory goes back to the system).
  size_t emptyCache() const {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      drop.swap(free_);
      cached_ = 0;
    }
    for (auto& e : drop) std::free(e.second);
    return drop.size();
  }

  struct Stats {
    size_t cachedBytes, cachedBlocks, limit, hits, misses;
  };
  Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, free_.size(), limit_, hits_, misses_};
  }

  static CachingCpuAllocator* instance;

 private:
  static void* systemAlloc(size_t bytes) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, bytes) != 0) return nullptr;
    return p;
  }

  void* allocateRaw(size_t n) const {
    if (n == 0) return nullptr;
    const bool cacheable = limit_ > 0 && n >= kMinCached;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(mutex_);
      // the smallest free block that fits, if it wastes at most an eighth (+ 1 MiB)
      auto it = free_.lower_bound(n);
      if (it != free_.end() && it->first <= n + n / 8 + kMinCached) {
        void* base = it->second;
        cached_ -= it->first;
        free_.erase(it);
        hits_++;
        return static_cast<char*>(base) + kHeader;
      }
      misses_++;
    }
    void* base = systemAlloc(n + kHeader);
    if (!base && cacheable) {
      emptyCache();
      base = systemAlloc(n + kHeader);
    }
    TORCH_CHECK(base != nullptr, "attfc_torch: out of memory: could not allocate ", n, " bytes of CPU memory");
    static_cast<Header*>(base)->capacity = cacheable ? n : kUncached;
    return static_cast<char*>(base) + kHeader;
  }

  void deallocate(void* data) const {
    void* base = static_cast<char*>(data) - kHeader;
    const size_t capacity = static_cast<Header*>(base)->capacity;
    if (capacity != kUncached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (capacity <= limit_) {
        free_.emplace(capacity, base);
        cached_ += capacity;
        // over the limit: give back the largest free blocks first
        while (cached_ > limit_ && !free_.empty()) {
          auto last = std::prev(free_.end());
          cached_ -= last->first;
          std::free(last->second);
          free_.erase(last);
        }
        return;
      }
    }
    std::free(base);
  }

  static void release(void* data) {
    if (data) instance->deallocate(data);
  }

  const size_t limit_;
  mutable std::mutex mutex_;
  mutable std::multimap<size_t, void*> free_;  // capacity -> block base
  mutable size_t cached_ = 0;
  mutable size_t hits_ = 0, misses_ = 0;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

size_t cacheLimit() {
  const char* env = std::getenv("ATTFC_TORCH_CACHE_MIB");
  if (env && *env) {
    char* end = nullptr;
    unsigned long long mib = std::strtoull(env, &end, 10);
    if (end && *end == '\0') return static_cast<size_t>(mib) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGE_SIZE);
  const size_t ram = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) : 0;
  return std::min<size_t>(ram / 4, size_t(8) << 30);
}

// Installed once per process, when the addon is loaded (before it makes any tensor); never destroyed,
// since tensors may outlive every static object.
struct Install {
  Install() {
    CachingCpuAllocator::instance = new CachingCpuAllocator(cacheLimit());
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority*/ 1);
  }
} install;

// allocatorStats() -> { cachedBytes, cachedBlocks, limitBytes, hits, misses, active }
napi_value AllocatorStats(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto s = CachingCpuAllocator::instance->stats();
    napi_value r;
    check(env, napi_create_object(env, &r), "object");
    setProp(env, r, "cachedBytes", makeNumber(env, static_cast<double>(s.cachedBytes)));
    setProp(env, r, "cachedBlocks", makeNumber(env, static_cast<double>(s.cachedBlocks)));
    setProp(env, r, "limitBytes", makeNumber(env, static_cast<double>(s.limit)));
    setProp(env, r, "hits", makeNumber(env, static_cast<double>(s.hits)));
    setProp(env, r, "misses", makeNumber(env, static_cast<double>(s.misses)));
    setProp(env, r, "active", makeBool(env, c10::GetCPUAllocator() == CachingCpuAllocator::instance));
    return r;
  });
}

// emptyCache() -> number of blocks given back to the system
napi_value EmptyCache(napi_env env, napi_callback_info info) {
  return guarded(env, [&] { return makeNumber(env, static_cast<double>(CachingCpuAllocator::instance->emptyCache())); });
}

ExportFunction exportAllocatorStats("allocatorStats", AllocatorStats);
ExportFunction exportEmptyCache("emptyCache", EmptyCache);

}  // namespace
