//! The manifest text: parsed with spans, variables substituted, and every key's line kept
//! so that errors found later can name it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::env::{SubstitutionError, substitute};
use crate::error::{Location, ManifestError, ManifestErrorKind};

/// A key path as errors show it: `pipelines.audio.nodes[1].params.rate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// The path of the key `key` under this one.
    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// The path of element `index` of the array at this path.
    pub(crate) fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    fn parent(&self) -> Option<KeyPath> {
        let mut path = self.clone();
        path.0.pop().map(|_| path)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where each key of a manifest is, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    file: PathBuf,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Every key and array element: the span from its key (or element) to the end of its
    /// value.
    spans: HashMap<KeyPath, Range<usize>>,
}

impl Document {
    /// Parses `text`, substitutes `${NAME}` in its strings through `env`, and reads it into
    /// `T`.
    pub(crate) fn parse<T: DeserializeOwned>(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(T, Document), ManifestError> {
        let mut document = Document {
            file: file.to_owned(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
            spans: HashMap::new(),
        };
        let mut root = DeTable::parse(text).map_err(|e| document.toml_error(&e))?;
        let mut walker = Walker {
            document: &mut document,
            env,
        };
        walker.table(&KeyPath::default(), root.get_mut())?;
        let value = T::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| document.toml_error(&e))?;
        Ok((value, document))
    }

    /// An error of `kind` at `path` (or at its closest parent in the file).
    pub(crate) fn error(&self, path: &KeyPath, kind: ManifestErrorKind) -> ManifestError {
        let mut at = Some(path.clone());
        let mut line = None;
        while let Some(path) = at {
            if let Some(span) = self.spans.get(&path) {
                line = Some(self.line(span.start));
                break;
            }
            at = path.parent();
        }
        ManifestError::new(
            Location {
                file: self.file.clone(),
                line,
                key: path.to_string(),
            },
            kind,
        )
    }

    /// An error for the whole file.
    pub(crate) fn file_error(file: &Path, kind: ManifestErrorKind) -> ManifestError {
        ManifestError::new(
            Location {
                file: file.to_owned(),
                line: None,
                key: String::new(),
            },
            kind,
        )
    }

    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// A TOML or shape error, at its span and under the innermost key around it.
    fn toml_error(&self, error: &toml::de::Error) -> ManifestError {
        let span = error.span();
        let key = span
            .as_ref()
            .and_then(|span| {
                self.spans
                    .iter()
                    .filter(|(_, s)| s.start <= span.start && span.start < s.end.max(s.start + 1))
                    .min_by_key(|(_, s)| s.len())
                    .map(|(path, _)| path.to_string())
            })
            .unwrap_or_default();
        ManifestError::new(
            Location {
                file: self.file.clone(),
                line: span.map(|s| self.line(s.start)),
                key,
            },
            ManifestErrorKind::Toml {
                message: error.message().trim_end().to_owned(),
            },
        )
    }
}

/// Records spans and substitutes variables, depth first.
struct Walker<'a> {
    document: &'a mut Document,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Walker<'_> {
    fn table(&mut self, path: &KeyPath, table: &mut DeTable<'_>) -> Result<(), ManifestError> {
        for (key, value) in table.iter_mut() {
            let path = path.key(key.get_ref());
            let end = value.span().end.max(key.span().end);
            self.document
                .spans
                .insert(path.clone(), key.span().start..end);
            self.value(&path, value)?;
        }
        Ok(())
    }

    fn value(
        &mut self,
        path: &KeyPath,
        value: &mut Spanned<DeValue<'_>>,
    ) -> Result<(), ManifestError> {
        match value.get_mut() {
            DeValue::String(text) => match substitute(text, self.env) {
                Ok(Some(replaced)) => *text = replaced.into(),
                Ok(None) => {}
                Err(SubstitutionError::Missing(var)) => {
                    return Err(self
                        .document
                        .error(path, ManifestErrorKind::MissingEnv { var }));
                }
                Err(SubstitutionError::Malformed) => {
                    let text = text.to_string();
                    return Err(self
                        .document
                        .error(path, ManifestErrorKind::BadSubstitution { text }));
                }
            },
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let path = path.index(i);
                    self.document.spans.insert(path.clone(), item.span());
                    self.value(&path, item)?;
                }
            }
            DeValue::Table(table) => self.table(path, table)?,
            DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        a: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
        #[serde(default)]
        list: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        n: i64,
    }

    fn parse(text: &str) -> Result<(Doc, Document), ManifestError> {
        let env = |name: &str| (name == "WHO").then(|| "world".to_owned());
        Document::parse(Path::new("m.toml"), text, &env)
    }

    #[test]
    fn paths_render_like_toml_keys() {
        let path = KeyPath::default()
            .key("pipelines")
            .key("my pipe")
            .key("nodes")
            .index(2)
            .key("id");
        assert_eq!(path.to_string(), r#"pipelines."my pipe".nodes[2].id"#);
    }

    #[test]
    fn errors_name_line_and_key() {
        let (doc, document) = parse("[a]\nname = \"hello ${WHO}\"\n[[a.list]]\nn = 1\n").unwrap();
        assert_eq!(doc.a.name, "hello world");
        assert_eq!(doc.a.list.iter().map(|i| i.n).collect::<Vec<_>>(), [1]);
        let at = KeyPath::default().key("a").key("list").index(0).key("n");
        let error = document.error(&at, ManifestErrorKind::Invalid { reason: "x".into() });
        assert_eq!(error.location.line, Some(4));
        assert_eq!(error.to_string(), "m.toml:4: `a.list[0].n`: x");

        let missing = parse("[a]\nname = \"${NOPE}\"\n").unwrap_err();
        assert_eq!(missing.location.line, Some(2));
        assert_eq!(missing.location.key, "a.name");
        assert!(matches!(missing.kind(), ManifestErrorKind::MissingEnv { var } if var == "NOPE"));

        let wrong = parse("[a]\nname = \"x\"\n\n[[a.list]]\nn = \"one\"\n").unwrap_err();
        assert_eq!(
            (wrong.location.line, wrong.location.key.as_str()),
            (Some(5), "a.list[0].n")
        );

        let unknown = parse("[a]\nname = \"x\"\ncolour = 3\n").unwrap_err();
        assert_eq!(unknown.location.line, Some(3), "{unknown}");
        assert!(unknown.to_string().contains("colour"), "{unknown}");

        let bad = parse("[a\n").unwrap_err();
        assert!(matches!(bad.kind(), ManifestErrorKind::Toml { .. }));
        assert_eq!(bad.location.line, Some(1));
    }
}
