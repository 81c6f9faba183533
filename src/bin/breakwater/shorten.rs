//! Echoing what a user wrote without flooding the terminal: a huge key or value in a
//! diagnostic is shortened where it stands, and everything around it (the reason, the
//! "did you mean", the allowed values) is kept. Shared by `check` and the scenario
//! reader (which the fuzz target of scenario files compiles on its own).

/// The longest quoted part (a key or value between `"` or backticks) or unbroken run of
/// characters echoed whole.
const LONGEST_PART: usize = 80;
/// What is kept of a longer one.
const KEPT_PART: usize = 40;
/// The longest text printed whole once every part is shortened (a huge value written
/// with spaces, unquoted).
const LONGEST_TEXT: usize = 2_000;

/// `part` whole, or its first [`KEPT_PART`] characters and how many were left out.
pub(crate) fn shorten_part(part: &str) -> String {
    let n = part.chars().count();
    if n <= LONGEST_PART {
        return part.to_string();
    }
    let kept: String = part.chars().take(KEPT_PART).collect();
    format!("{kept}… ({} more characters)", n - KEPT_PART)
}

/// `text` with each quoted part, and each unbroken run of characters, longer than
/// [`LONGEST_PART`] shortened in place; what is around them is kept. A text still longer
/// than [`LONGEST_TEXT`] keeps its start.
pub(crate) fn shorten(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * LONGEST_TEXT));
    let mut rest = text;
    while !rest.is_empty() {
        // The next quoted part, or the next run of non-blank characters.
        let quoted = rest
            .char_indices()
            .find(|&(_, c)| c == '"' || c == '`')
            .and_then(|(open, q)| {
                let inner = open + q.len_utf8();
                rest[inner..]
                    .find(q)
                    .map(|close| (open, inner, inner + close, q))
            });
        match quoted {
            Some((open, inner, close, q)) => {
                out.push_str(&shorten_runs(&rest[..open]));
                out.push(q);
                out.push_str(&shorten_part(&rest[inner..close]));
                out.push(q);
                rest = &rest[close + q.len_utf8()..];
            }
            None => {
                out.push_str(&shorten_runs(rest));
                rest = "";
            }
        }
    }
    let n = out.chars().count();
    if n <= LONGEST_TEXT {
        return out;
    }
    let kept: String = out.chars().take(LONGEST_TEXT - 40).collect();
    format!("{kept}… ({} more characters)", n - (LONGEST_TEXT - 40))
}

/// `text` with each run of non-blank characters longer than [`LONGEST_PART`] shortened.
fn shorten_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * LONGEST_TEXT));
    let mut run = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            out.push_str(&shorten_part(&run));
            run.clear();
            out.push(c);
        } else {
            run.push(c);
        }
    }
    out.push_str(&shorten_part(&run));
    out
}
