// Memory for the arrays the bindings return: cache-line aligned blocks, the
// larger ones recycled.
//
// A training step returns a few megabytes of arrays (outputs, logits, their
// gradients) and frees them before the next step. glibc gives most of that
// back to the OS when it is freed (the top of its heap is trimmed) and the
// next step faults the pages in again (benchmarks/NOTES.md, Memory). Blocks
// of at least kRecycleBytes go back to a bounded cache instead, from which
// the next array of the same size takes them.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace rnnkit_py {

namespace py = pybind11;

class ResultBlocks {
 public:
  static constexpr size_t kAlign = 64;                  // a cache line
  static constexpr size_t kRecycleBytes = size_t(64) << 10;  // smaller blocks come from glibc's bins anyway
  static constexpr size_t kDefaultLimit = size_t(64) << 20;  // free blocks kept at most

  // The one cache of the process. Never destroyed: arrays may be freed
  // during interpreter shutdown, after static destructors have run.
  static ResultBlocks& instance() {
    static ResultBlocks* blocks = new ResultBlocks();
    return *blocks;
  }

  // How many bytes of free blocks the cache may keep (0: none, every block
  // goes back to glibc); lowering it frees what no longer fits.
  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    while (cached_ > limit_) {
      cached_ -= free_.back().size;
      std::free(free_.back().data);
      free_.pop_back();
    }
  }
  size_t limit() const { return limit_; }
  size_t cached() const { return cached_; }

  // An aligned block of `bytes` and the capsule that owns it: the returned
  // array's base, which gives the block back when the array dies.
  py::capsule take(size_t bytes, void** data) {
    const size_t size = round_up(bytes);
    void* p = nullptr;
    if (size >= kRecycleBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < free_.size(); ++i)
        if (free_[i].size == size) {
          p = free_[i].data;
          cached_ -= size;
          free_[i] = free_.back();
          free_.pop_back();
          break;
        }
    }
    if (p == nullptr) {
      p = std::aligned_alloc(kAlign, size);
      if (p == nullptr) throw std::bad_alloc();
    }
    *data = p;
    // The size travels in the capsule's context, so that it comes back with the block.
    PyObject* owner = PyCapsule_New(p, nullptr, [](PyObject* capsule) {
      void* block = PyCapsule_GetPointer(capsule, nullptr);
      instance().give_back(block, reinterpret_cast<size_t>(PyCapsule_GetContext(capsule)));
    });
    if (owner == nullptr || PyCapsule_SetContext(owner, reinterpret_cast<void*>(size)) != 0) {
      Py_XDECREF(owner);  // gives the block back
      if (owner == nullptr) std::free(p);
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::capsule>(owner);
  }

 private:
  struct Block {
    void* data;
    size_t size;
  };

  static size_t round_up(size_t bytes) { return (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign; }

  void give_back(void* block, size_t size) {
    if (size >= kRecycleBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= limit_) {
        free_.push_back({block, size});
        cached_ += size;
        return;
      }
    }
    std::free(block);
  }

  std::mutex mutex_;
  std::vector<Block> free_;
  size_t cached_ = 0;
  size_t limit_ = kDefaultLimit;
};

}  // namespace rnnkit_py
