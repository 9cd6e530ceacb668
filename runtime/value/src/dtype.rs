use serde::{Deserialize, Serialize};

/// Element type of an [`Array`](crate::Array), named as numpy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// One byte, 0 or 1.
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 64-bit integer.
    I64,
    /// IEEE half precision.
    F16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::U32,
        DType::I32,
        DType::U64,
        DType::I64,
        DType::F16,
        DType::F32,
        DType::F64,
    ];

    /// Size of one element in bytes.
    pub const fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The numpy name of the dtype (`"float32"`, `"uint8"`, ...).
    pub const fn numpy_name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// numpy's `dtype.kind` character for this dtype: `b`, `u`, `i` or `f`.
    pub const fn numpy_kind(self) -> char {
        match self {
            DType::Bool => 'b',
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => 'u',
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => 'i',
            DType::F16 | DType::F32 | DType::F64 => 'f',
        }
    }

    /// The dtype of numpy's `dtype.kind` character and `dtype.itemsize`, if troupe supports
    /// it (both are plain attributes, cheaper to read than `dtype.name`).
    pub fn from_numpy_kind(kind: char, itemsize: usize) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.numpy_kind() == kind && d.itemsize() == itemsize)
    }

    /// The dtype with this numpy name, if troupe supports it.
    pub fn from_numpy_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.numpy_name() == name)
    }

    /// The array-interface type string of the dtype in this machine's byte order (`"<f4"`,
    /// `"|u1"`), as `__array_interface__` and `__cuda_array_interface__` write it.
    pub fn typestr(self) -> String {
        let kind = self.numpy_kind();
        let order = match (self.itemsize(), cfg!(target_endian = "little")) {
            (1, _) => '|',
            (_, true) => '<',
            (_, false) => '>',
        };
        format!("{order}{kind}{}", self.itemsize())
    }

    /// The dtype of an array-interface type string in this machine's byte order (`'='` and
    /// `'|'` also accepted); `None` for any other.
    pub fn from_typestr(typestr: &str) -> Option<DType> {
        let native = |d: DType| {
            let mut ours = d.typestr();
            ours.replace_range(..1, "");
            ours
        };
        let rest = typestr.strip_prefix(['=', '|']).or_else(|| {
            let order = if cfg!(target_endian = "little") {
                '<'
            } else {
                '>'
            };
            typestr.strip_prefix(order)
        })?;
        DType::ALL.into_iter().find(|&d| native(d) == rest)
    }
}

/// Plain-old-data element types that an [`Array`](crate::Array) can be viewed as.
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The dtype of this element type.
    const DTYPE: DType;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

element!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
         u64 => U64, i64 => I64, f32 => F32, f64 => F64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_numpy_name(d.numpy_name()), Some(d));
        }
        assert_eq!(DType::from_numpy_name("complex64"), None);
    }

    #[test]
    fn numpy_kinds_and_sizes_name_the_same_dtypes() {
        for d in DType::ALL {
            assert_eq!(
                DType::from_numpy_kind(d.numpy_kind(), d.itemsize()),
                Some(d)
            );
        }
        assert_eq!(DType::from_numpy_kind('f', 4), Some(DType::F32));
        assert_eq!(DType::from_numpy_kind('u', 1), Some(DType::U8));
        assert_eq!(DType::from_numpy_kind('c', 8), None);
        assert_eq!(DType::from_numpy_kind('f', 16), None);
        assert_eq!(DType::from_numpy_kind('b', 2), None);
        assert_eq!(DType::from_numpy_kind('O', 8), None);
    }

    #[test]
    fn typestrs_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_typestr(&d.typestr()), Some(d));
        }
        assert_eq!(DType::F32.typestr(), "<f4");
        assert_eq!(DType::from_typestr("|u1"), Some(DType::U8));
        assert_eq!(DType::from_typestr("=i8"), Some(DType::I64));
        assert_eq!(DType::from_typestr(">f4"), None);
        assert_eq!(DType::from_typestr("<c8"), None);
    }
}
