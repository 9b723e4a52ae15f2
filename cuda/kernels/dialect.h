/* One C dialect for two compilers.
 *
 * Every kernel in this folder is compiled twice from the same text: as CUDA C++ by NVRTC
 * (CUDA devices) and as OpenCL C 1.2 by the OpenCL runtime (NVIDIA, AMD and Intel GPUs;
 * PoCL on CPUs). This header maps the few places where the two differ: qualifiers, the
 * thread index, 32-bit atomics and the integer type names. Everything else is the common
 * subset: structs passed by value, fixed-size arrays, 32×32→64-bit products through
 * `ulong`, no recursion, no dynamic allocation; local memory only as fixed-size arrays
 * declared in a kernel's body.
 */
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define PULSE_CUDA 1
typedef unsigned int uint;
typedef unsigned long long ulong;
#define KERNEL extern "C" __global__
#define GLOBAL
#define CONSTANT __constant__ const
#define DEVICE __device__ __forceinline__
#define DEVICE_CALL __device__ __noinline__
#define GLOBAL_ID() ((ulong)blockIdx.x * (ulong)blockDim.x + (ulong)threadIdx.x)
#define ATOMIC_INC(p) atomicAdd((p), 1u)
/* Work-groups (thread blocks) sharing local (shared) memory. */
#define LOCAL_ARRAY(type, name, len) __shared__ type name[len]
#define BARRIER() __syncthreads()
#define GROUP_ID() ((ulong)blockIdx.x)
#define NUM_GROUPS() ((ulong)gridDim.x)
#define LOCAL_ID() ((uint)threadIdx.x)
#define LOCAL_SIZE() ((uint)blockDim.x)
#else
#define PULSE_OPENCL 1
#define KERNEL __kernel
#define GLOBAL __global
#define CONSTANT __constant
#define DEVICE static inline
#define DEVICE_CALL static
#define GLOBAL_ID() ((ulong)get_global_id(0))
#define ATOMIC_INC(p) atomic_inc(p)
#define LOCAL_ARRAY(type, name, len) __local type name[len]
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define GROUP_ID() ((ulong)get_group_id(0))
#define NUM_GROUPS() ((ulong)get_num_groups(0))
#define LOCAL_ID() ((uint)get_local_id(0))
#define LOCAL_SIZE() ((uint)get_local_size(0))
#endif

/* Limbs of a 256-bit field element: little-endian 32-bit words, the same bytes as
 * arkworks' `BigInt<4>` of little-endian u64 limbs on a little-endian host. */
#define LIMBS 8
