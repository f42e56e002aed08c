//! Showing an error with its sources, for log lines and error messages: errors keep their
//! source (`#[source]`), and a reader of the log needs the whole chain, not only the top
//! ("service error", "error sending request").

use std::error::Error;
use std::fmt::Write;

/// `error: source: source's source: …`, each level once (some errors repeat their
/// source's text in their own).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn shows_every_source_once() {
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(chain(&e), "outer: connection reset");
        let io = std::io::Error::other("x");
        assert_eq!(chain(&io), "x");
    }
}
