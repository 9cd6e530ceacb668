//! DLPack, the C ABI array libraries exchange tensors through: the device types every build
//! tells apart (a CPU tensor takes the numpy path), and, built with the `cuda` feature, the
//! capsules CUDA tensors cross in.

/// `kDLCPU`: host memory.
pub(crate) const KDL_CPU: i32 = 1;
/// `kDLCUDA`: CUDA device memory.
pub(crate) const KDL_CUDA: i32 = 2;

#[cfg(feature = "cuda")]
mod capsule;

#[cfg(feature = "cuda")]
pub(crate) use capsule::{export_capsule, is_c_contiguous, read_capsule};
