//! The terminal: how wide it is, and text wrapped to fit.

use std::io::IsTerminal;

/// Width used when the output is not a terminal (a file, a pipe, a test).
pub(crate) const PLAIN_WIDTH: usize = 80;

/// The width of stdout when it is a terminal, else [`PLAIN_WIDTH`]. `COLUMNS` (as set by
/// a shell or a test) wins over the terminal's own report.
pub(crate) fn stdout_width() -> usize {
    width_of(
        std::io::stdout().is_terminal(),
        terminal_size::terminal_size(),
    )
}

/// The width of stderr when it is a terminal, else `None` (no live progress then).
pub(crate) fn stderr_width() -> Option<usize> {
    let stderr = std::io::stderr();
    stderr
        .is_terminal()
        .then(|| width_of(true, terminal_size::terminal_size_of(&stderr)))
}

fn width_of(
    is_terminal: bool,
    size: Option<(terminal_size::Width, terminal_size::Height)>,
) -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return columns;
    }
    match size {
        Some((terminal_size::Width(w), _)) if is_terminal && w > 0 => usize::from(w),
        _ => PLAIN_WIDTH,
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a word longer
/// than `width` gets a line of its own). Lines after the first keep the indentation of
/// the first line's text after a leading "- ".
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let indent = if text.starts_with("- ") { "  " } else { "" };
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line.push_str(indent);
        }
        if !line.is_empty() && line != indent {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Prints `text` to stdout, wrapped to `width`.
pub(crate) fn println_wrapped(text: &str, width: usize) {
    for line in wrap(text, width) {
        println!("{line}");
    }
}

/// `text` cut to at most `width` characters.
pub(crate) fn clip(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_line_within_the_width() {
        let text = "- the breaker never opened: its window (last 10 s) held at most 14 outcomes, below minimum_calls 20.";
        let lines = wrap(text, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert!(lines[1].starts_with("  "), "{lines:?}");
        assert_eq!(
            lines.join(" ").split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }
}
