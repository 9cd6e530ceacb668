//! Where a value sits in a call's arguments, rendered only when an error names it.

use std::fmt;

/// A position such as `args[1]['x'][0]`, built on the stack as conversion descends.
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    /// The outermost name: `args`, `kwargs`, `result`, `value`.
    Root(&'a str),
    /// An item of a list or tuple.
    Index(&'a Path<'a>, usize),
    /// An entry of a dict.
    Key(&'a Path<'a>, &'a str),
    /// An attribute of an object (`.samples` of an Audio).
    Attr(&'a Path<'a>, &'static str),
}

impl<'a> Path<'a> {
    /// The item `index` below this position.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The entry `key` below this position.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// The attribute `name` below this position.
    pub fn attr(&'a self, name: &'static str) -> Path<'a> {
        Path::Attr(self, name)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
            Path::Key(parent, key) => {
                write!(f, "{parent}['")?;
                for c in key.chars() {
                    match c {
                        '\'' | '\\' => write!(f, "\\{c}")?,
                        c if c.is_control() => write!(f, "{}", c.escape_default())?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("']")
            }
            Path::Attr(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}
