use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::buffer::Buffer;
use crate::codec::{DecodeError, Stashed, stash_invalid};
use crate::dtype::{DType, Element};

/// Most dimensions an array may have (numpy allows 64; media never needs more than a few).
pub const MAX_NDIM: usize = 32;

/// Why an array could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArrayError {
    /// The data's length is not `product(shape) * itemsize`.
    #[error("{dtype:?} array of shape {shape:?} needs {expected} bytes, got {actual}")]
    LengthMismatch {
        /// Element type.
        dtype: DType,
        /// Shape asked for.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The shape has more than [`MAX_NDIM`] dimensions or its size overflows.
    #[error("unsupported shape {0:?}")]
    BadShape(Vec<usize>),
}

/// A dense, C-contiguous n-dimensional array whose bytes live in a [`Buffer`].
///
/// Cloning shares the bytes. The bytes never change once the array exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ArrayRepr")]
pub struct Array {
    dtype: DType,
    shape: Vec<usize>,
    data: Buffer,
}

#[derive(Deserialize)]
struct ArrayRepr {
    dtype: DType,
    shape: Vec<usize>,
    data: Buffer,
}

impl TryFrom<ArrayRepr> for Array {
    type Error = Stashed;

    fn try_from(r: ArrayRepr) -> Result<Self, Self::Error> {
        Array::new(r.dtype, r.shape, r.data)
            .map_err(|e| stash_invalid(DecodeError::InvalidArray(e)))
    }
}

impl Array {
    /// An array of `dtype` and `shape` over `data`, checked for a consistent length.
    pub fn new(dtype: DType, shape: Vec<usize>, data: Buffer) -> Result<Array, ArrayError> {
        let expected = byte_len(dtype, &shape)?;
        if expected != data.len() {
            return Err(ArrayError::LengthMismatch {
                dtype,
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Array { dtype, shape, data })
    }

    /// An array holding a copy of `elements`.
    pub fn from_slice<T: Element>(elements: &[T], shape: Vec<usize>) -> Result<Array, ArrayError> {
        Array::new(T::DTYPE, shape, Buffer::copy_from_slice(as_bytes(elements)))
    }

    /// A one-dimensional array taking ownership of `elements` without copying.
    pub fn from_vec<T: Element>(elements: Vec<T>) -> Array {
        let shape = vec![elements.len()];
        let data = Buffer::from(bytes::Bytes::from_owner(PodVec(elements)));
        Array {
            dtype: T::DTYPE,
            shape,
            data,
        }
    }

    /// The same bytes under another shape with as many elements.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Array, ArrayError> {
        Array::new(self.dtype, shape, self.data)
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes.
    pub fn data(&self) -> &Buffer {
        &self.data
    }

    /// The buffer, to swap for one holding the same bytes elsewhere (e.g. in shared memory).
    pub(crate) fn data_mut(&mut self) -> &mut Buffer {
        &mut self.data
    }

    /// The elements, if `T` is the array's dtype and the bytes are aligned for `T`.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        let bytes = self.data.as_slice();
        if T::DTYPE != self.dtype || bytes.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
            return None;
        }
        // SAFETY: dtype matches, the pointer is aligned, the length is a multiple of size_of::<T>
        // (checked at construction) and every bit pattern is a valid `T` (sealed POD types).
        Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), self.len()) })
    }

    /// A copy of the elements, if `T` is the array's dtype (works for unaligned bytes too).
    pub fn to_vec<T: Element>(&self) -> Option<Vec<T>> {
        if let Some(slice) = self.as_slice::<T>() {
            return Some(slice.to_vec());
        }
        if T::DTYPE != self.dtype {
            return None;
        }
        let size = std::mem::size_of::<T>();
        let out = self
            .data
            .as_slice()
            .chunks_exact(size)
            // SAFETY: each chunk is exactly size_of::<T>() bytes; read_unaligned copes with
            // any alignment, and every bit pattern is a valid `T`.
            .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<T>()) })
            .collect();
        Some(out)
    }
}

fn byte_len(dtype: DType, shape: &[usize]) -> Result<usize, ArrayError> {
    if shape.len() > MAX_NDIM {
        return Err(ArrayError::BadShape(shape.to_vec()));
    }
    shape
        .iter()
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| ArrayError::BadShape(shape.to_vec()))
}

pub(crate) fn as_bytes<T: Element>(elements: &[T]) -> &[u8] {
    // SAFETY: `Element` types are plain old data without padding.
    unsafe { std::slice::from_raw_parts(elements.as_ptr().cast(), std::mem::size_of_val(elements)) }
}

struct PodVec<T>(Vec<T>);

impl<T: Element> AsRef<[u8]> for PodVec<T> {
    fn as_ref(&self) -> &[u8] {
        as_bytes(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_views_and_copies() {
        let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0])
            .reshape(vec![2, 2])
            .unwrap();
        assert_eq!(a.as_slice::<f32>(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
        assert_eq!(a.as_slice::<i32>(), None);
        assert_eq!(a.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert!(a.clone().reshape(vec![3]).is_err());
    }

    #[test]
    fn inconsistent_lengths_and_overflowing_shapes_are_errors() {
        let err = Array::new(DType::F32, vec![3], Buffer::copy_from_slice(&[0; 11])).unwrap_err();
        assert!(matches!(
            err,
            ArrayError::LengthMismatch {
                expected: 12,
                actual: 11,
                ..
            }
        ));
        let err = Array::new(DType::F64, vec![usize::MAX, 2], Buffer::new()).unwrap_err();
        assert!(matches!(err, ArrayError::BadShape(_)));
    }
}
