//! DLPack, the C ABI array libraries exchange tensors through: the device types, and the
//! capsules tensors cross in (CPU tensors in every build, CUDA ones with the `cuda` feature).

/// `kDLCPU`: host memory.
pub(crate) const KDL_CPU: i32 = 1;
/// `kDLCUDA`: CUDA device memory.
pub(crate) const KDL_CUDA: i32 = 2;

mod capsule;

#[cfg(feature = "cuda")]
pub(crate) use capsule::is_c_contiguous;
pub(crate) use capsule::{export_capsule, read_capsule};
