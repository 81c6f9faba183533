//! `--out FILE`: the picture's file, checked before a run starts (the extension names
//! the format; the file must be writable; a PNG needs fonts for its text), written
//! after it. An existing file is never touched before the picture is ready: the check
//! creates a temporary file beside it, renamed over it at the end (removed if the run
//! fails), so a run that fails leaves the old picture as it was.

use std::fs::{File, OpenOptions};
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
    target: Target,
    format: Format,
    fonts: Option<resvg::usvg::Options<'static>>,
}

/// Where the picture is written.
enum Target {
    /// A temporary file beside `path`, renamed over it once written (`None` once
    /// renamed or given up).
    Beside { file: File, temp: Option<PathBuf> },
    /// `path` itself, opened without truncating it and truncated only when the picture
    /// is written: a symbolic link (which a rename would replace), or a file in a
    /// directory where no temporary file can be made.
    InPlace(File),
}

impl Drop for Output {
    fn drop(&mut self) {
        // The run failed before the picture was written: the temporary file goes, the
        // old picture stays.
        if let Target::Beside {
            temp: Some(temp), ..
        } = &self.target
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Opens where the picture of `path` will be written, truncating nothing.
fn open_target(path: &Path) -> std::io::Result<Target> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let in_place = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(Target::InPlace)
    };
    if is_link {
        return in_place();
    }
    let name = path
        .file_name()
        .map_or_else(|| std::ffi::OsString::from("picture"), |n| n.to_os_string());
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(&name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    // An existing file must be writable too (the rename would replace it regardless),
    // and the new one keeps its permissions.
    let existing = match std::fs::metadata(path) {
        Ok(meta) => {
            OpenOptions::new().write(true).open(path)?;
            Some(meta.permissions())
        }
        Err(_) => None,
    };
    match OpenOptions::new().write(true).create_new(true).open(&temp) {
        Ok(file) => {
            if let Some(permissions) = existing {
                // Best effort: a file whose mode cannot be set is still written.
                let _ = file.set_permissions(permissions);
            }
            Ok(Target::Beside {
                file,
                temp: Some(temp),
            })
        }
        Err(beside) => in_place().map_err(|_| beside),
    }
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
    match open_target(path) {
        Ok(target) => Ok(Output {
            path: path.to_path_buf(),
            target,
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
        let written = match &mut self.target {
            Target::Beside { file, temp } => file
                .write_all(&bytes)
                .and_then(|()| file.sync_all())
                .and_then(|()| match temp.as_deref() {
                    Some(from) => std::fs::rename(from, &self.path),
                    None => Ok(()),
                })
                .map(|()| *temp = None),
            Target::InPlace(file) => file.set_len(0).and_then(|()| file.write_all(&bytes)),
        };
        written.map_err(|e| {
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
