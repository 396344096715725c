// The selective scan of the Mamba block on CPUs, forward and backward, compiled on first use by
// networks/scan/compiled_cpu.py (torch.utils.cpp_extension). For each sequence b, channel c and
// state n it computes, from h[-1] = 0,
//
//     h[t, n] = exp(delta[t, c] * A[c, n]) * h[t - 1, n] + delta[t, c] * u[t, c] * B[t, n]
//     y[t, c] = sum_n C[t, n] * h[t, n] + D[c] * u[t, c]
//
// Memory layout (all tensors of one dtype, float32 or float64; the caller upcasts half types):
//   u, delta, grad_y  (batch, length, channels)  any strides
//   A                 (channels, states)         contiguous
//   B, C              (batch, length, states)    states contiguous (stride 1), other strides any
//   D                 (channels,)                contiguous
//   y, grad_u, grad_delta (batch, length, channels), grad_B, grad_C (batch, length, states),
//   grad_A (channels, states), grad_D (channels,): contiguous, returned.
//   checkpoints       (batch, chunks, channels, states): the state entering tokens 0, K, 2K, ...
//                     (K = checkpoint_every), written by the forward pass when K > 0.
//
// One task scans one sequence for a block of channels, token after token, the block's states in
// a small local array; tasks run on PyTorch's thread pool (at::parallel_for, which spreads them
// only in a build with OpenMP), so torch.set_num_threads governs them. The loops over states are
// written to vectorise; exp of float32 is a polynomial the compiler vectorises (libm's is not),
// and on x86-64 the float32 kernels are compiled twice, for AVX2+FMA and for the baseline, and
// picked at run time: the build stays portable, so a cached build can be shared between machines.
//
// The backward pass runs the transposed recurrence g[t] = C[t] gy[t] + exp(delta[t+1] A) g[t+1]
// (g = dLoss/dh) from the end of the sequence, one chunk of K tokens at a time: each chunk's
// states and decays are first recomputed from its checkpoint into a task-local buffer. Gradients
// summed over channels (B, C) are summed per channel block, over sequences (A, D) per sequence,
// and the partial sums are added up at the end.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#if defined(__GNUC__)
#define ULVM_INLINE inline __attribute__((always_inline))
#else
#define ULVM_INLINE inline
#endif

// Vectorisation hints (OpenMP's simd pragmas); they allow reordering the sums over states.
#if defined(__GNUC__)
#define ULVM_STR(...) #__VA_ARGS__
#define ULVM_SIMD_REDUCE(...) _Pragma(ULVM_STR(omp simd reduction(+ : __VA_ARGS__)))
#define ULVM_SIMD _Pragma("omp simd")
#else
#define ULVM_SIMD_REDUCE(...)
#define ULVM_SIMD
#endif

namespace {

constexpr int64_t kChannelBlock = 8;  // channels per task: their states stay in L1

template <typename To, typename From>
ULVM_INLINE To bit_cast(From from) {
#if defined(__GNUC__)
  return __builtin_bit_cast(To, from);
#else
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
#endif
}

// exp(x) for float32 in plain arithmetic (Cephes' polynomial on [-ln2/2, ln2/2] and an exponent
// built from bits), so that loops calling it vectorise; relative error about 1e-7. Below -87 it
// returns 0 rather than a denormal (which is slow and below float32's resolution of any sum here).
ULVM_INLINE float exp_approx(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float clamped = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifted = clamped * 1.44269504088896341f + magic;
  const float k = shifted - magic;
  const float r = clamped - k * 0.693359375f + k * 2.12194440e-4f;  // x - k ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent = bit_cast<int32_t>(shifted) - bit_cast<int32_t>(magic);  // k
  const float scale = bit_cast<float>((exponent + 127) << 23);                       // 2^k
  return x < -87.0f ? 0.0f : p * scale;
}

ULVM_INLINE double exp_approx(double x) { return std::exp(x); }  // float64 is for checks

template <typename T>
struct Scan {
  const T *u, *delta, *A, *B, *C, *D;
  int64_t batch, length, channels, states;
  int64_t u_sb, u_st, u_sc, delta_sb, delta_st, delta_sc, B_sb, B_st, C_sb, C_st;
};

template <typename T>
struct Grads {
  const T* grad_y;
  int64_t gy_sb, gy_st, gy_sc;
  const T* checkpoints;
  int64_t checkpoint_every;
  T *grad_u, *grad_delta;  // (batch, length, channels)
  T *grad_B, *grad_C;      // (channel blocks, batch, length, states): summed over blocks later
  T *grad_A, *grad_D;      // (batch, channels, states), (batch, channels): summed over batch later
};

// Forward: sequence b, channels [c0, c1). NS > 0 fixes the number of states at compile time.
template <typename T, int64_t NS>
ULVM_INLINE void forward_block(const Scan<T>& s, int64_t b, int64_t c0, int64_t c1, T* y, T* checkpoints,
                               int64_t checkpoint_every) {
  const int64_t N = NS > 0 ? NS : s.states;
  const int64_t L = s.length;
  const int64_t nc = c1 - c0;
  std::vector<T> state(nc * N, T(0));
  T* __restrict__ h = state.data();
  for (int64_t t = 0; t < L; ++t) {
    if (checkpoint_every > 0 && t % checkpoint_every == 0) {
      T* out = checkpoints + ((b * ((L + checkpoint_every - 1) / checkpoint_every) + t / checkpoint_every) * s.channels + c0) * N;
      std::copy(h, h + nc * N, out);
    }
    const T* __restrict__ Bt = s.B + b * s.B_sb + t * s.B_st;
    const T* __restrict__ Ct = s.C + b * s.C_sb + t * s.C_st;
    for (int64_t c = c0; c < c1; ++c) {
      const T dt = s.delta[b * s.delta_sb + t * s.delta_st + c * s.delta_sc];
      const T uu = s.u[b * s.u_sb + t * s.u_st + c * s.u_sc];
      const T du = dt * uu;
      const T* __restrict__ Ac = s.A + c * N;
      T* __restrict__ hc = h + (c - c0) * N;
      T acc = 0;
      ULVM_SIMD_REDUCE(acc)
      for (int64_t n = 0; n < N; ++n) {
        const T hn = exp_approx(dt * Ac[n]) * hc[n] + du * Bt[n];
        hc[n] = hn;
        acc += Ct[n] * hn;
      }
      y[(b * L + t) * s.channels + c] = acc + s.D[c] * uu;
    }
  }
}

// Backward: sequence b, channels [c0, c1), which are channel block j.
template <typename T, int64_t NS>
ULVM_INLINE void backward_block(const Scan<T>& s, const Grads<T>& g, int64_t b, int64_t c0, int64_t c1, int64_t j) {
  const int64_t N = NS > 0 ? NS : s.states;
  const int64_t L = s.length;
  const int64_t K = g.checkpoint_every;
  const int64_t num_chunks = (L + K - 1) / K;
  const int64_t nc = c1 - c0;
  std::vector<T> storage(2 * K * nc * N + 2 * nc * N + 2 * N + nc, T(0));
  T* __restrict__ states = storage.data();         // (K, nc, N): h[t] of the chunk
  T* __restrict__ decays = states + K * nc * N;     // (K, nc, N): exp(delta[t] A)
  T* __restrict__ grad_h = decays + K * nc * N;     // (nc, N): dLoss/dh[t] through the recurrence
  T* __restrict__ grad_A = grad_h + nc * N;         // (nc, N)
  T* __restrict__ grad_Bt = grad_A + nc * N;        // (N,)
  T* __restrict__ grad_Ct = grad_Bt + N;            // (N,)
  T* __restrict__ grad_D = grad_Ct + N;             // (nc,)
  for (int64_t k = num_chunks - 1; k >= 0; --k) {
    const int64_t t0 = k * K, t1 = std::min(L, t0 + K);
    const T* __restrict__ entering = g.checkpoints + ((b * num_chunks + k) * s.channels + c0) * N;
    // 1. the chunk's states and decays again, from its checkpoint
    for (int64_t t = t0; t < t1; ++t) {
      const T* __restrict__ Bt = s.B + b * s.B_sb + t * s.B_st;
      for (int64_t c = c0; c < c1; ++c) {
        const T dt = s.delta[b * s.delta_sb + t * s.delta_st + c * s.delta_sc];
        const T du = dt * s.u[b * s.u_sb + t * s.u_st + c * s.u_sc];
        const T* __restrict__ Ac = s.A + c * N;
        const int64_t i = ((t - t0) * nc + (c - c0)) * N;
        const T* __restrict__ prev = t > t0 ? states + i - nc * N : entering + (c - c0) * N;
        T* __restrict__ hc = states + i;
        T* __restrict__ ec = decays + i;
        ULVM_SIMD
        for (int64_t n = 0; n < N; ++n) {
          const T e = exp_approx(dt * Ac[n]);
          ec[n] = e;
          hc[n] = e * prev[n] + du * Bt[n];
        }
      }
    }
    // 2. the transposed recurrence back through the chunk
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const T* __restrict__ Bt = s.B + b * s.B_sb + t * s.B_st;
      const T* __restrict__ Ct = s.C + b * s.C_sb + t * s.C_st;
      std::fill(grad_Bt, grad_Bt + 2 * N, T(0));
      for (int64_t c = c0; c < c1; ++c) {
        const T dt = s.delta[b * s.delta_sb + t * s.delta_st + c * s.delta_sc];
        const T uu = s.u[b * s.u_sb + t * s.u_st + c * s.u_sc];
        const T du = dt * uu;
        const T gy = g.grad_y[b * g.gy_sb + t * g.gy_st + c * g.gy_sc];
        const T* __restrict__ Ac = s.A + c * N;
        const int64_t i = ((t - t0) * nc + (c - c0)) * N;
        const T* __restrict__ hc = states + i;
        const T* __restrict__ ec = decays + i;
        const T* __restrict__ prev = t > t0 ? states + i - nc * N : entering + (c - c0) * N;
        T* __restrict__ gh = grad_h + (c - c0) * N;
        T* __restrict__ gA = grad_A + (c - c0) * N;
        T grad_input = 0, grad_log_decay_A = 0;
        ULVM_SIMD_REDUCE(grad_input, grad_log_decay_A)
        for (int64_t n = 0; n < N; ++n) {
          const T gn = gh[n] + Ct[n] * gy;  // dLoss/dh[t]
          grad_Ct[n] += gy * hc[n];
          grad_Bt[n] += gn * du;
          grad_input += gn * Bt[n];  // dLoss/d(delta u)
          const T grad_log_decay = gn * ec[n] * prev[n];  // dLoss/d(delta A)
          grad_log_decay_A += grad_log_decay * Ac[n];
          gA[n] += grad_log_decay * dt;
          gh[n] = gn * ec[n];
        }
        const int64_t out = (b * L + t) * s.channels + c;
        g.grad_u[out] = dt * grad_input + gy * s.D[c];
        g.grad_delta[out] = uu * grad_input + grad_log_decay_A;
        grad_D[c - c0] += gy * uu;
      }
      const int64_t row = ((j * s.batch + b) * L + t) * N;
      std::copy(grad_Bt, grad_Bt + N, g.grad_B + row);
      std::copy(grad_Ct, grad_Ct + N, g.grad_C + row);
    }
  }
  std::copy(grad_A, grad_A + nc * N, g.grad_A + (b * s.channels + c0) * N);
  std::copy(grad_D, grad_D + nc, g.grad_D + b * s.channels + c0);
}

template <typename T, int64_t NS>
ULVM_INLINE void forward_tasks(const Scan<T>& s, int64_t begin, int64_t end, T* y, T* checkpoints, int64_t checkpoint_every) {
  const int64_t blocks = (s.channels + kChannelBlock - 1) / kChannelBlock;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / blocks, c0 = (task % blocks) * kChannelBlock;
    forward_block<T, NS>(s, b, c0, std::min(s.channels, c0 + kChannelBlock), y, checkpoints, checkpoint_every);
  }
}

template <typename T, int64_t NS>
ULVM_INLINE void backward_tasks(const Scan<T>& s, const Grads<T>& g, int64_t begin, int64_t end) {
  const int64_t blocks = (s.channels + kChannelBlock - 1) / kChannelBlock;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / blocks, j = task % blocks, c0 = j * kChannelBlock;
    backward_block<T, NS>(s, g, b, c0, std::min(s.channels, c0 + kChannelBlock), j);
  }
}

// float32 kernels for AVX2+FMA (x86-64, picked at run time) and for the baseline instruction set.
#define ULVM_FLOAT_KERNELS(SUFFIX, TARGET)                                                                       \
  TARGET void forward_f32_##SUFFIX(const Scan<float>& s, int64_t begin, int64_t end, float* y, float* checkpoints, \
                                   int64_t checkpoint_every) {                                                   \
    if (s.states == 16)                                                                                          \
      forward_tasks<float, 16>(s, begin, end, y, checkpoints, checkpoint_every);                                 \
    else                                                                                                         \
      forward_tasks<float, 0>(s, begin, end, y, checkpoints, checkpoint_every);                                  \
  }                                                                                                              \
  TARGET void backward_f32_##SUFFIX(const Scan<float>& s, const Grads<float>& g, int64_t begin, int64_t end) {    \
    if (s.states == 16)                                                                                          \
      backward_tasks<float, 16>(s, g, begin, end);                                                               \
    else                                                                                                         \
      backward_tasks<float, 0>(s, g, begin, end);                                                                \
  }

ULVM_FLOAT_KERNELS(baseline, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
ULVM_FLOAT_KERNELS(avx2, __attribute__((target("avx2,fma"))))
bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#else
bool has_avx2() { return false; }
#define forward_f32_avx2 forward_f32_baseline
#define backward_f32_avx2 backward_f32_baseline
#endif

void forward_range(const Scan<float>& s, int64_t begin, int64_t end, float* y, float* checkpoints, int64_t every) {
  (has_avx2() ? forward_f32_avx2 : forward_f32_baseline)(s, begin, end, y, checkpoints, every);
}
void forward_range(const Scan<double>& s, int64_t begin, int64_t end, double* y, double* checkpoints, int64_t every) {
  forward_tasks<double, 0>(s, begin, end, y, checkpoints, every);
}
void backward_range(const Scan<float>& s, const Grads<float>& g, int64_t begin, int64_t end) {
  (has_avx2() ? backward_f32_avx2 : backward_f32_baseline)(s, g, begin, end);
}
void backward_range(const Scan<double>& s, const Grads<double>& g, int64_t begin, int64_t end) {
  backward_tasks<double, 0>(s, g, begin, end);
}

void check_arguments(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                     const at::Tensor& C, const at::Tensor& D) {
  TORCH_CHECK(u.scalar_type() == at::kFloat || u.scalar_type() == at::kDouble,
              "selective scan (CPU): float32 or float64 tensors expected, got ", u.scalar_type());
  for (const at::Tensor* t : {&delta, &A, &B, &C, &D}) {
    TORCH_CHECK(t->scalar_type() == u.scalar_type(), "selective scan (CPU): all arguments must have one dtype");
  }
  TORCH_CHECK(u.dim() == 3 && delta.sizes() == u.sizes(), "selective scan (CPU): u and delta must be (batch, length, channels)");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == u.size(2) && A.is_contiguous(), "selective scan (CPU): A must be contiguous (channels, states)");
  const int64_t states = A.size(1);
  for (const at::Tensor* t : {&B, &C}) {
    TORCH_CHECK(t->dim() == 3 && t->size(0) == u.size(0) && t->size(1) == u.size(1) && t->size(2) == states &&
                    (states <= 1 || t->stride(2) == 1),
                "selective scan (CPU): B and C must be (batch, length, states) with contiguous states");
  }
  TORCH_CHECK(D.dim() == 1 && D.size(0) == u.size(2) && D.is_contiguous(), "selective scan (CPU): D must be contiguous (channels,)");
}

template <typename T>
Scan<T> describe(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                 const at::Tensor& C, const at::Tensor& D) {
  return Scan<T>{u.data_ptr<T>(), delta.data_ptr<T>(), A.data_ptr<T>(), B.data_ptr<T>(), C.data_ptr<T>(),
                 D.data_ptr<T>(), u.size(0), u.size(1), u.size(2), A.size(1), u.stride(0), u.stride(1), u.stride(2),
                 delta.stride(0), delta.stride(1), delta.stride(2), B.stride(0), B.stride(1), C.stride(0), C.stride(1)};
}

int64_t num_tasks(const at::Tensor& u) { return u.size(0) * ((u.size(2) + kChannelBlock - 1) / kChannelBlock); }

std::tuple<at::Tensor, at::Tensor> scan_forward(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                                const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                                                int64_t checkpoint_every) {
  check_arguments(u, delta, A, B, C, D);
  TORCH_CHECK(checkpoint_every >= 0, "selective scan (CPU): checkpoint_every must be >= 0");
  const int64_t batch = u.size(0), length = u.size(1), channels = u.size(2), states = A.size(1);
  at::Tensor y = at::empty({batch, length, channels}, u.options());
  const int64_t chunks = checkpoint_every > 0 ? (length + checkpoint_every - 1) / checkpoint_every : 0;
  at::Tensor checkpoints = at::empty({batch, chunks, channels, states}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_forward", [&] {
    const Scan<scalar_t> s = describe<scalar_t>(u, delta, A, B, C, D);
    scalar_t* y_ptr = y.data_ptr<scalar_t>();
    scalar_t* checkpoints_ptr = checkpoints.data_ptr<scalar_t>();
    at::parallel_for(0, num_tasks(u), 1, [&](int64_t begin, int64_t end) {
      forward_range(s, begin, end, y_ptr, checkpoints_ptr, checkpoint_every);
    });
  });
  return {y, checkpoints};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan_backward(
    const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
    const at::Tensor& D, const at::Tensor& checkpoints, const at::Tensor& grad_y, int64_t checkpoint_every) {
  check_arguments(u, delta, A, B, C, D);
  const int64_t batch = u.size(0), length = u.size(1), channels = u.size(2), states = A.size(1);
  TORCH_CHECK(checkpoint_every > 0, "selective scan (CPU): checkpoint_every must be > 0");
  TORCH_CHECK(grad_y.sizes() == u.sizes() && grad_y.scalar_type() == u.scalar_type(),
              "selective scan (CPU): grad_y must match u");
  TORCH_CHECK(checkpoints.is_contiguous() && checkpoints.dim() == 4 && checkpoints.size(0) == batch &&
                  checkpoints.size(1) == (length + checkpoint_every - 1) / checkpoint_every &&
                  checkpoints.size(2) == channels && checkpoints.size(3) == states,
              "selective scan (CPU): checkpoints do not fit (run the forward pass with the same checkpoint_every)");
  const int64_t blocks = (channels + kChannelBlock - 1) / kChannelBlock;
  at::Tensor grad_u = at::empty({batch, length, channels}, u.options());
  at::Tensor grad_delta = at::empty({batch, length, channels}, u.options());
  at::Tensor grad_B_parts = at::empty({blocks, batch, length, states}, u.options());
  at::Tensor grad_C_parts = at::empty({blocks, batch, length, states}, u.options());
  at::Tensor grad_A_parts = at::empty({batch, channels, states}, u.options());
  at::Tensor grad_D_parts = at::empty({batch, channels}, u.options());
  at::Tensor grad_A = at::zeros({channels, states}, u.options());
  at::Tensor grad_D = at::zeros({channels}, u.options());
  at::Tensor grad_B = blocks == 1 ? grad_B_parts[0] : at::zeros({batch, length, states}, u.options());
  at::Tensor grad_C = blocks == 1 ? grad_C_parts[0] : at::zeros({batch, length, states}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_backward", [&] {
    using T = scalar_t;
    const Scan<T> s = describe<T>(u, delta, A, B, C, D);
    const Grads<T> g{grad_y.data_ptr<T>(),       grad_y.stride(0),           grad_y.stride(1),
                     grad_y.stride(2),           checkpoints.data_ptr<T>(),  checkpoint_every,
                     grad_u.data_ptr<T>(),       grad_delta.data_ptr<T>(),   grad_B_parts.data_ptr<T>(),
                     grad_C_parts.data_ptr<T>(), grad_A_parts.data_ptr<T>(), grad_D_parts.data_ptr<T>()};
    at::parallel_for(0, num_tasks(u), 1, [&](int64_t begin, int64_t end) { backward_range(s, g, begin, end); });
    // The partial sums, in a fixed order (the result does not depend on the thread count).
    T* gA = grad_A.data_ptr<T>();
    T* gD = grad_D.data_ptr<T>();
    for (int64_t b = 0; b < batch; ++b) {
      const T* partA = g.grad_A + b * channels * states;
      for (int64_t i = 0; i < channels * states; ++i) gA[i] += partA[i];
      for (int64_t c = 0; c < channels; ++c) gD[c] += g.grad_D[b * channels + c];
    }
    if (blocks > 1) {
      const int64_t rows = batch * length * states;
      const auto add_blocks = [&](const T* parts, T* total) {
        at::parallel_for(0, rows, 4096, [&](int64_t begin, int64_t end) {
          for (int64_t j = 0; j < blocks; ++j) {
            const T* part = parts + j * rows;
            for (int64_t i = begin; i < end; ++i) total[i] += part[i];
          }
        });
      };
      add_blocks(g.grad_B, grad_B.data_ptr<T>());
      add_blocks(g.grad_C, grad_C.data_ptr<T>());
    }
  });
  return {grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D};
}

// How many threads at::parallel_for spreads work over in this build: torch.get_num_threads(), or
// 1 when the build lacks OpenMP (parallel_for then runs everything on the calling thread).
int64_t parallel_threads() {
  std::atomic<int64_t> most{1};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    const int64_t mine = at::get_thread_num() + 1;
    int64_t seen = most.load();
    while (mine > seen && !most.compare_exchange_weak(seen, mine)) {
    }
  });
  return most.load();
}

}  // namespace

TORCH_LIBRARY(ulvm_scan_cpu, m) {
  m.def("parallel_threads() -> int", &parallel_threads);
  m.def("forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, int checkpoint_every) -> (Tensor, Tensor)");
  m.def(
      "backward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor checkpoints, Tensor grad_y, "
      "int checkpoint_every) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ulvm_scan_cpu, CPU, m) {
  m.impl("forward", &scan_forward);
  m.impl("backward", &scan_backward);
}
