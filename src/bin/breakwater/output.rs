//! `--out FILE`: the picture's file, checked before a run starts (the extension names
//! the format; the file must be writable; a PNG needs fonts for its text), written
//! after it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::scenario::Scenario;
use crate::trace::Trace;

/// The picture's format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// SVG, written as is.
    Svg,
    /// PNG, drawn from the SVG by resvg with the system's fonts.
    Png,
}

/// A picture file, opened for writing before the run.
pub(crate) struct Output {
    path: PathBuf,
    file: File,
    format: Format,
    fonts: Option<resvg::usvg::Options<'static>>,
}

/// Checks `path` before a run: a `.svg` or `.png` name, a file that can be written and,
/// for a PNG, fonts to draw its text with. On failure prints why and returns the exit
/// code (2 for a name the command does not understand, 3 for a file it cannot write).
pub(crate) fn prepare(path: &Path) -> Result<Output, i32> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("svg") => Format::Svg,
        Some("png") => Format::Png,
        _ => {
            eprintln!(
                "breakwater: --out {}: the picture is written as SVG (FILE.svg) or PNG \
                 (FILE.png); the extension names the format",
                path.display()
            );
            return Err(exit::USAGE);
        }
    };
    let fonts = match format {
        Format::Svg => None,
        Format::Png => {
            let mut options = resvg::usvg::Options::default();
            options.fontdb_mut().load_system_fonts();
            if options.fontdb.is_empty() {
                eprintln!(
                    "breakwater: --out {}: no fonts found on this system to draw the \
                     picture's text; write --out FILE.svg instead",
                    path.display()
                );
                return Err(exit::IO);
            }
            Some(options)
        }
    };
    match File::create(path) {
        Ok(file) => Ok(Output {
            path: path.to_path_buf(),
            file,
            format,
            fonts,
        }),
        Err(e) => {
            eprintln!("breakwater: cannot write {}: {e}", path.display());
            Err(exit::IO)
        }
    }
}

impl Output {
    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Draws both runs of `scenario` under `policy` into the file and says so (wrapped
    /// to `width`).
    pub(crate) fn write_chart(
        self,
        scenario: &Scenario,
        policy: &str,
        [unprotected, protected]: [&Trace; 2],
        width: usize,
    ) -> Result<(), i32> {
        let svg = crate::svg::render(scenario, policy, unprotected, protected);
        let path = self.path().display().to_string();
        self.write(&svg)?;
        let note = format!(
            "Wrote {path} (success rate, latency, busy workers and breaker state over time)."
        );
        crate::terminal::println_wrapped(&note, width);
        Ok(())
    }

    /// Writes the picture `svg` in the file's format.
    pub(crate) fn write(mut self, svg: &str) -> Result<(), i32> {
        let bytes = match (&self.format, &self.fonts) {
            (Format::Png, Some(options)) => match png(svg, options) {
                Ok(bytes) => bytes,
                Err(e) => {
                    eprintln!("breakwater: cannot draw {}: {e}", self.path.display());
                    return Err(exit::ERRORS);
                }
            },
            _ => svg.as_bytes().to_vec(),
        };
        self.file.write_all(&bytes).map_err(|e| {
            eprintln!("breakwater: cannot write {}: {e}", self.path.display());
            exit::IO
        })
    }
}

/// Draws `svg` at twice its size, for sharp text on high-density screens.
fn png(svg: &str, options: &resvg::usvg::Options<'_>) -> Result<Vec<u8>, String> {
    use resvg::tiny_skia::{Pixmap, Transform};
    let tree = resvg::usvg::Tree::from_str(svg, options).map_err(|e| e.to_string())?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(2.0)
        .ok_or("picture too large")?;
    let mut pixmap = Pixmap::new(size.width(), size.height()).ok_or("picture has no area")?;
    resvg::render(&tree, Transform::from_scale(2.0, 2.0), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}
