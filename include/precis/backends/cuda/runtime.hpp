// precis/backends/cuda/runtime.hpp — the CUDA runtime as precis uses it from host C++ (any
// compiler: only <cuda_runtime_api.h>, the C API): checked calls, the device's memory for
// Tensor<D, R, cuda> (device_allocator<cuda>), the stream allocations are ordered on, and the
// device checks that turn "no GPU" or "GPU too old for this build" into one clear error.
//
//   PRECIS_CUDA_CHECK(call, what...)   throws cuda_error "[cuda] <what>: <call> failed: <error name>
//                                      (<error string>)"; `what` names the op and the shapes.
//   device_allocator<cuda>             cudaMallocAsync / cudaFreeAsync from the device's default
//                                      memory pool (plain device memory, never managed memory),
//                                      ordered on the calling thread's current stream (below);
//                                      the pool keeps freed memory for reuse (release threshold
//                                      = max), so the per-op temporaries of a forward pass do
//                                      not go back to the driver each time.
//   current_stream / StreamScope       the stream the allocator orders on: the legacy default
//                                      stream unless a StreamScope (the Cuda backend's execute)
//                                      set one. The backend's own stream is a blocking stream,
//                                      so work on the legacy stream and on it is ordered either way.
//   device_info()                      name, compute capability, memory; cuda_error when there is
//                                      no usable device ("no CUDA device: …").
//
// Running out of device memory is a cuda_error that says how many bytes were asked for and how
// many are free, never a bare abort.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t
#include <string>   // std::string

#include <precis/core/device.hpp>  // cuda, device_allocator
#include <precis/core/error.hpp>   // error, fail

namespace precis {

/// A CUDA call or kernel launch failed, or no usable CUDA device exists.
class cuda_error : public error {
 public:
  using error::error;
};

namespace cuda_rt {

/// Throws cuda_error for a failed call: "[cuda] <what>: <call> failed: <name> (<string>)".
template <class... What>
[[noreturn]] inline void fail_call(cudaError_t e, const char* call, const What&... what) {
  fail<cuda_error>("[cuda] ", what..., ": ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

}  // namespace cuda_rt

#define PRECIS_CUDA_CHECK(call, ...)                                                        \
  do {                                                                                      \
    const cudaError_t precis_cuda_e_ = (call);                                              \
    if (precis_cuda_e_ != cudaSuccess) ::precis::cuda_rt::fail_call(precis_cuda_e_, #call, __VA_ARGS__); \
  } while (0)

namespace cuda_rt {

/// The stream device allocations of this thread are ordered on (nullptr: the legacy stream).
[[nodiscard]] inline cudaStream_t& current_stream() noexcept {
  thread_local cudaStream_t s = nullptr;
  return s;
}

/// Sets current_stream() for a scope (nests).
class StreamScope {
 public:
  explicit StreamScope(cudaStream_t s) noexcept : prev_(current_stream()) { current_stream() = s; }
  ~StreamScope() { current_stream() = prev_; }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  cudaStream_t prev_;
};

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int major = 0, minor = 0;  ///< compute capability
  int multiprocessors = 0;
  std::size_t total_bytes = 0, free_bytes = 0;
};

/// The current device, or cuda_error "no CUDA device" (driver missing, no GPU, or CUDA_VISIBLE_DEVICES empty).
[[nodiscard]] inline DeviceInfo device_info() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    fail<cuda_error>("[cuda] no CUDA device: cudaGetDeviceCount ",
                     e != cudaSuccess ? std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")"
                                      : std::string("found 0 devices"),
                     "; run on a machine with an NVIDIA GPU and driver, or use --device cpu");
  DeviceInfo d;
  PRECIS_CUDA_CHECK(cudaGetDevice(&d.ordinal), "device_info");
  cudaDeviceProp p{};
  PRECIS_CUDA_CHECK(cudaGetDeviceProperties(&p, d.ordinal), "device_info");
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  PRECIS_CUDA_CHECK(cudaMemGetInfo(&d.free_bytes, &d.total_bytes), "device_info");
  return d;
}

/// True when a CUDA device is usable (for tests that skip without one).
[[nodiscard]] inline bool device_available() noexcept {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

/// Keeps freed blocks in the device's default pool (the stream-ordered allocator returns them to
/// the driver at every synchronization otherwise). Once per process.
inline void keep_pool_memory() {
  static const bool done = [] {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    cudaMemPool_t pool{};
    if (cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess) return false;
    std::uint64_t threshold = ~std::uint64_t{0};
    return cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold) == cudaSuccess;
  }();
  (void)done;
}

}  // namespace cuda_rt

/// Device memory for Tensor<D, R, cuda>: stream-ordered allocations from the default pool.
template <>
struct device_allocator<cuda> {
  [[nodiscard]] static void* allocate(std::size_t bytes) {
    cuda_rt::keep_pool_memory();
    void* p = nullptr;
    const cudaError_t e = cudaMallocAsync(&p, bytes == 0 ? 256 : bytes, cuda_rt::current_stream());
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // an allocation failure is not sticky; clear it
      std::size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      fail<cuda_error>("[cuda] device allocation of ", bytes, " bytes failed: ", cudaGetErrorName(e), " (",
                       cudaGetErrorString(e), "); ", free_b, " of ", total_b, " bytes free on the device");
    }
    return p;
  }
  static void deallocate(void* p, std::size_t /*bytes*/) noexcept { (void)cudaFreeAsync(p, cuda_rt::current_stream()); }
  [[nodiscard]] static void* allocate_zeroed(std::size_t bytes) {
    void* p = allocate(bytes);
    const cudaError_t e = cudaMemsetAsync(p, 0, bytes, cuda_rt::current_stream());
    if (e != cudaSuccess) {
      deallocate(p, bytes);
      PRECIS_CUDA_CHECK(e, "zero-filling a new device tensor of ", bytes, " bytes");
    }
    return p;
  }
  /// Host → device; returns once the host buffer may be reused.
  static void copy_to_device(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    PRECIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_rt::current_stream()),
                      "copying ", bytes, " bytes to the device");
    PRECIS_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::current_stream()), "copying ", bytes, " bytes to the device");
  }
  /// Device → host; returns when the bytes are on the host (reports an earlier kernel's fault here).
  static void copy_to_host(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    PRECIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_rt::current_stream()),
                      "copying ", bytes, " bytes to the host");
    PRECIS_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::current_stream()), "copying ", bytes,
                      " bytes to the host (an earlier kernel's fault surfaces here)");
  }
};

}  // namespace precis
