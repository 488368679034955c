//! A small in-app file picker for QR images (no native dialog crate): one folder's listing,
//! folders first, then PNG and JPEG files; the parent folder; click a file to choose it.

use std::path::{Path, PathBuf};

use egui::{RichText, Ui};

use crate::style;

/// Most entries listed from one folder (the rest are left out, with a note).
pub const MAX_ENTRIES: usize = 2000;

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File or folder name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// A folder.
    pub is_dir: bool,
}

/// Whether `name` looks like an image the scanner reads (.png, .jpg, .jpeg; any case).
#[must_use]
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e))
}

/// The folders and image files in `dir` (hidden ones skipped), folders first, each sorted by
/// name; at most [`MAX_ENTRIES`], and whether some were left out.
///
/// # Errors
/// The folder cannot be read: a message.
pub fn listing(dir: &Path) -> Result<(Vec<Entry>, bool), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{} cannot be opened ({e})", dir.display()))?;
    let mut entries = Vec::new();
    let mut more = false;
    for item in rd.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = item.path();
        // Follow symlinks: a link to a folder is a folder.
        let is_dir = path.is_dir();
        if !is_dir && !is_image_name(&name) {
            continue;
        }
        if entries.len() >= MAX_ENTRIES {
            more = true;
            break;
        }
        entries.push(Entry { name, path, is_dir });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));
    Ok((entries, more))
}

/// The picker window's state.
pub struct Picker {
    dir: PathBuf,
    entries: Vec<Entry>,
    more: bool,
    error: Option<String>,
}

/// What the user did in the picker this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// Nothing yet.
    Nothing,
    /// This file was chosen.
    File(PathBuf),
    /// The window was closed.
    Closed,
}

impl Picker {
    /// A picker showing `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        let mut p = Picker { dir: dir.to_owned(), entries: Vec::new(), more: false, error: None };
        p.go(dir.to_owned());
        p
    }

    /// The folder shown.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn go(&mut self, dir: PathBuf) {
        match listing(&dir) {
            Ok((entries, more)) => {
                self.entries = entries;
                self.more = more;
                self.error = None;
                self.dir = dir;
            }
            Err(e) => self.error = Some(format!("{e}. Choose another folder.")),
        }
    }

    /// Draws the window.
    pub fn ui(&mut self, ctx: &egui::Context) -> Picked {
        let mut open = true;
        let mut picked = Picked::Nothing;
        let mut go_to = None;
        egui::Window::new("Choose a QR image").open(&mut open).default_size([560.0, 460.0]).collapsible(false).show(ctx, |ui: &mut Ui| {
            ui.label(RichText::new(self.dir.display().to_string()).monospace().color(style::MUTED));
            if let Some(parent) = self.dir.parent()
                && ui.button("Parent folder").clicked()
            {
                go_to = Some(parent.to_owned());
            }
            if let Some(e) = &self.error {
                ui.label(RichText::new(e).color(style::BAD));
            }
            ui.separator();
            egui::ScrollArea::vertical().max_height(340.0).show(ui, |ui| {
                if self.entries.is_empty() {
                    ui.label(RichText::new("No folders or PNG/JPEG images here.").color(style::MUTED));
                }
                for e in &self.entries {
                    let label = if e.is_dir { format!("{}/", e.name) } else { e.name.clone() };
                    if ui.selectable_label(false, label).clicked() {
                        if e.is_dir {
                            go_to = Some(e.path.clone());
                        } else {
                            picked = Picked::File(e.path.clone());
                        }
                    }
                }
                if self.more {
                    ui.label(RichText::new(format!("Only the first {MAX_ENTRIES} entries are listed.")).color(style::MUTED));
                }
            });
        });
        if let Some(d) = go_to {
            self.go(d);
        }
        if !open && picked == Picked::Nothing {
            return Picked::Closed;
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_and_png_or_jpeg_files_are_listed_folders_first() {
        let d = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        for f in ["b.PNG", "a.jpg", "c.jpeg", "notes.txt", ".hidden.png", "qr.png.exe"] {
            std::fs::write(d.path().join(f), b"x").unwrap_or_else(|e| unreachable!("{e}"));
        }
        std::fs::create_dir(d.path().join("zfolder")).unwrap_or_else(|e| unreachable!("{e}"));
        let (entries, more) = listing(d.path()).unwrap_or_else(|e| unreachable!("{e}"));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["zfolder", "a.jpg", "b.PNG", "c.jpeg"]);
        assert!(!more);
        assert!(listing(&d.path().join("missing")).is_err());
    }
}
