//! `${NAME}` substitution in the manifest's string values.
//!
//! - `${NAME}` is the variable's value; an unset variable is an error (a set but empty one
//!   gives the empty string).
//! - `${NAME:-default}` is the value when set and not empty, else `default` (taken as is).
//! - `$${` is a literal `${`; any other `$` is itself.
//!
//! `NAME` is a letter or `_` followed by letters, digits and `_`. Only string values are
//! substituted (not keys, not numbers): `rate = "${RATE}"` stays a string.

/// Why a string could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubstitutionError {
    /// `${var}` with `var` unset.
    Missing(String),
    /// A `${` with no `}`, or no valid name inside.
    Malformed,
}

/// `text` with its variables replaced by what `lookup` says; `Ok(None)` when it has none.
pub(crate) fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, SubstitutionError> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or(SubstitutionError::Malformed)?;
            let (name, default) = match after[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&after[..end], None),
            };
            if !is_name(name) {
                return Err(SubstitutionError::Malformed);
            }
            let value = match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
                (Some(value), _) => value,
                (None, Some(default)) => default.to_owned(),
                (None, None) => return Err(SubstitutionError::Missing(name.to_owned())),
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let sub = |t: &str| substitute(t, &env);
        assert_eq!(sub("plain $ text"), Ok(None));
        assert_eq!(
            sub("${HOME}/x and $5"),
            Ok(Some("/home/me/x and $5".into()))
        );
        assert_eq!(sub("${NOPE:-a/b}${EMPTY:-c}"), Ok(Some("a/bc".into())));
        assert_eq!(sub("$${HOME}"), Ok(Some("${HOME}".into())));
        assert_eq!(sub("${EMPTY}"), Ok(Some(String::new())));
        assert_eq!(
            sub("${NOPE}"),
            Err(SubstitutionError::Missing("NOPE".into()))
        );
        assert_eq!(sub("${HOME"), Err(SubstitutionError::Malformed));
        assert_eq!(sub("${1X}"), Err(SubstitutionError::Malformed));
        assert_eq!(sub("${}"), Err(SubstitutionError::Malformed));
    }
}
