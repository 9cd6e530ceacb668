//! Values between Python objects and troupe's wire model.
//!
//! | Python | wire |
//! |---|---|
//! | `None`, `bool`, `int` (64-bit), `float`, `str` | the same |
//! | `bytes`, `bytearray`, `memoryview` | bytes (received as `bytes`) |
//! | `list`, `tuple` | list (received as `list`) |
//! | `dict` with `str` keys | map |
//! | numpy array of a supported dtype, `troupe.HostArray` | array (received as a read-only numpy view; without numpy in the venv, as `troupe.HostArray`, which speaks DLPack) |
//! | numpy scalar | its `.item()` |
//! | `troupe.Audio`, `troupe.VideoFrame` | audio, video |
//! | a CPU tensor with DLPack (torch) | array, copied once from its capsule |
//! | a CUDA tensor (`__cuda_array_interface__` or DLPack: torch, cupy), `troupe.CudaArray` | device array (received as `troupe.CudaArray`) |
//!
//! Anything else is refused with an error naming the type and where it sits.

#[cfg(feature = "cuda")]
mod cuda_tensor;
mod foreign;
mod from_python;
mod media;
mod numpy;
mod path;
mod to_python;

pub use from_python::{dict_from_python, from_python};
pub use numpy::pool_view;
pub use path::Path;
pub use to_python::to_python;
