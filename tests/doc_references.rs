//! Every reference to a document or a section resolves.
//!
//! The code, the READMEs, the Makefile and the template point at the design notes in
//! `docs/` and at sections of the repository's README, by number, by title or by link.
//! This test walks the repository's text files (`.rs`, `.md`, `.toml`, `.yaml`, `.py`,
//! `.sh`, the Makefile; not `target/`, `.git`, `.venv*`), finds every such reference and
//! checks that the file exists and has the section:
//!
//! * a path under `docs/` ending in `.md`, optionally followed by `, section N`,
//!   `, sections N and M`, `("Title")` or `, "Title"`, or by `#anchor`;
//! * `README` or `README.md` followed by `, "Title"`, `("Title")` or `'Title'` (the
//!   repository's README, or the README a path names), and `runbook, "Title"`;
//! * inside `docs/`, a bare `section N` (the same file's section N, or in the index's
//!   table, the section of the file the row links);
//! * in Markdown, `see "Title"` (the same file's section), and every relative link and
//!   its `#anchor`.
//!
//! A title is a heading (with or without its number, or its part before a colon) or a
//! runbook entry's bold opening.
//!
//! Inside `docs/`, a backticked repository path must exist and a backticked test name
//! (a snake-case word with three or more underscores) must be a function somewhere.
//! Nothing may point at design notes kept outside the repository. This file is not
//! scanned itself: it spells out the patterns it looks for.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// This file, relative to the repository root (skipped by the walk).
const SELF: &str = "tests/doc_references.rs";

/// Fewer references than this means the walk or the patterns broke, not that the
/// repository has none.
const MIN_REFERENCES: usize = 40;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the walk goes into a directory of this name.
fn walk_into(name: &str) -> bool {
    !(name == "target"
        || name == ".git"
        || name.starts_with(".venv")
        || name == "node_modules"
        || name == "__pycache__"
        || name == ".aws-sam"
        || name == ".work")
}

/// Whether a file of this name is scanned.
fn scanned(name: &str) -> bool {
    name == "Makefile"
        || [".rs", ".md", ".toml", ".yaml", ".yml", ".py", ".sh"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Every scanned file under `dir`, relative to the repository root, with its text.
fn walk(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if walk_into(&name) {
                walk(&path, root, out);
            }
        } else if kind.is_file() && scanned(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if rel == Path::new(SELF) {
                continue;
            }
            // Not UTF-8: not a document anyone reads as text.
            if let Ok(text) = fs::read_to_string(&path) {
                out.push((rel, text));
            }
        }
    }
}

/// A Markdown file's sections as references may name them.
#[derive(Debug, Default)]
struct Sections {
    /// Section numbers of numbered headings (`## 3. The swap` gives `3`).
    numbers: BTreeSet<String>,
    /// Heading texts, with and without their number, their part before a colon, and
    /// runbook entries' bold openings.
    titles: BTreeSet<String>,
    /// GitHub's anchors of the headings.
    anchors: BTreeSet<String>,
}

/// `text` without fenced code blocks (whose `#` lines are not headings and whose
/// contents are not references).
fn without_code_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn squash(s: &str) -> String {
    s.replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The leading section number of a heading (`3.`, `3.2` or `3.2.`), if any, and the rest.
fn split_number(heading: &str) -> Option<(&str, &str)> {
    let end = heading
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(heading.len());
    let number = heading[..end].trim_end_matches('.');
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((number, heading[end..].trim()))
}

fn sections(text: &str) -> Sections {
    let mut s = Sections::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in without_code_blocks(text).lines() {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            let heading = trimmed[hashes..].trim().trim_end_matches('#').trim();
            let base = slug(heading);
            let n = seen.entry(base.clone()).or_insert(0);
            s.anchors
                .insert(if *n == 0 { base } else { format!("{base}-{n}") });
            *n += 1;
            let text = match split_number(heading) {
                Some((number, rest)) => {
                    s.numbers.insert(number.to_owned());
                    s.titles.insert(squash(heading));
                    rest
                }
                None => heading,
            };
            s.titles.insert(squash(text));
            // "Consumers: keyshift-client" may be called "Consumers".
            if let Some((topic, _)) = text.split_once(": ") {
                s.titles.insert(squash(topic));
            }
        } else if let Some(rest) = trimmed.strip_prefix("**") {
            // A runbook entry: `**A rotation is stuck.** (...)`.
            if let Some(end) = rest.find("**") {
                s.titles.insert(squash(rest[..end].trim_end_matches('.')));
            }
        }
    }
    s
}

/// A file's text as one line: comment markers (`//!`, `///`, `//`, `#`) and line
/// continuations taken off each line, lines joined by a space, backticks dropped,
/// whitespace squashed. References wrap across comment lines; this reads them whole.
fn flatten(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut l = line.trim();
        for marker in ["//!", "///", "//"] {
            if let Some(rest) = l.strip_prefix(marker) {
                l = rest;
                break;
            }
        }
        l = l.trim_start_matches('#').trim();
        l = l.strip_suffix('\\').unwrap_or(l).trim_end();
        out.push_str(l);
        out.push(' ');
    }
    squash(&out)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// The quoted title at the start of `s` (`"…"`, `“…”` or `'…'`), if any.
fn quoted(s: &str) -> Option<String> {
    let mut chars = s.chars();
    let open = chars.next()?;
    let rest = chars.as_str();
    let end = match open {
        '"' => rest.find('"')?,
        '\u{201c}' => rest.find('\u{201d}')?,
        // An apostrophe inside the title is followed by a letter; the closing quote is not.
        '\'' => {
            rest.char_indices()
                .find(|&(i, c)| c == '\'' && !rest[i + 1..].starts_with(|n: char| n.is_alphanumeric()))?
                .0
        }
        _ => return None,
    };
    Some(squash(&rest[..end]))
}

/// `N`, `N and M`, `N, M and K` at the start of `s`.
fn numbers(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = rest[..end].trim_end_matches('.');
        if number.is_empty() {
            break;
        }
        out.push(number.to_owned());
        rest = &rest[end..];
        if let Some(r) = [", and ", " and ", ", "]
            .iter()
            .find_map(|sep| rest.strip_prefix(sep))
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        {
            rest = r;
        } else {
            break;
        }
    }
    out
}

/// What a reference asks of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// The file only.
    File,
    /// A numbered section.
    Number(String),
    /// A section by its title.
    Title(String),
    /// A heading's anchor.
    Anchor(String),
}

/// One reference: the file it names (relative to the repository root) and what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    file: PathBuf,
    want: Want,
    /// The reference as written, for the error message.
    text: String,
}

/// What follows a file name in a reference: section numbers or a quoted title.
fn after_file(file: &Path, rest: &str, written: &str, out: &mut Vec<Reference>) {
    let rest = rest.strip_prefix([']', ')']).unwrap_or(rest);
    let (comma, rest) = match rest.strip_prefix(", ") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut found = Vec::new();
    if comma {
        if let Some(r) = rest
            .strip_prefix("sections ")
            .or_else(|| rest.strip_prefix("section "))
        {
            found.extend(numbers(r).into_iter().map(Want::Number));
        } else if let Some(t) = quoted(rest) {
            found.push(Want::Title(t));
        }
    } else if let Some(t) = rest.strip_prefix(" (").and_then(quoted) {
        found.push(Want::Title(t));
    } else if let Some(t) = rest.strip_prefix(' ').and_then(quoted) {
        found.push(Want::Title(t));
    }
    if found.is_empty() {
        found.push(Want::File);
    }
    for want in found {
        out.push(Reference {
            file: file.to_path_buf(),
            want,
            text: written.to_owned(),
        });
    }
}

/// Resolves a path written in `from` against the repository root, then `from`'s
/// directory and each of its parents (a crate's tests name files relative to the crate).
fn resolve(root: &Path, from: &Path, written: &str) -> Option<PathBuf> {
    let mut bases = vec![PathBuf::new()];
    let mut dir = from.parent();
    while let Some(d) = dir {
        bases.push(d.to_path_buf());
        dir = d.parent();
    }
    bases.into_iter().find_map(|base| {
        let candidate = normalise(&base.join(written));
        root.join(&candidate).exists().then_some(candidate)
    })
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in p.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `text` without its inline code spans (a link shown as code is not a link).
fn without_code_spans(text: &str) -> String {
    text.split('`').step_by(2).collect()
}

/// Every reference in `flat` (a flattened file, `from`), and every problem found while
/// reading them (a path that does not exist, a forbidden target). `links`: the file's
/// flattened text without code spans, when it is Markdown.
fn references(root: &Path, from: &Path, flat: &str, links: Option<&str>) -> (Vec<Reference>, Vec<String>) {
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    let lower = flat.to_lowercase();
    // Spelt in pieces, so that searching the repository for them finds nothing.
    let outside = [
        ["design", ".md"].concat(),
        ["../", "shared"].concat(),
        ["/work", "/"].concat(),
        ["research", "/"].concat(),
        ["research", " note"].concat(),
        // The team's research notes, by name.
        ["rotation", "-semantics"].concat(),
        ["consumer", "-anchors"].concat(),
        ["next", "-capabilities"].concat(),
        ["emulator", "-and-tools"].concat(),
    ];
    for pattern in outside {
        if lower.contains(&pattern) {
            problems.push(format!(
                "points outside the repository (`{pattern}`): write what it needs into docs/ instead"
            ));
        }
    }

    // docs/<file>.md, with what follows it.
    for (at, _) in flat.match_indices("docs/") {
        if flat[..at].ends_with(|c: char| is_path_char(c)) {
            continue;
        }
        let len = flat[at..]
            .find(|c: char| !is_path_char(c))
            .unwrap_or(flat.len() - at);
        let path = flat[at..at + len].trim_end_matches('.');
        let after = &flat[at + path.len()..];
        if !path.ends_with(".md") {
            if path != "docs/" && !root.join(path).exists() {
                problems.push(format!("`{path}` does not exist"));
            }
            continue;
        }
        if let Some(anchor) = after.strip_prefix('#') {
            let len = anchor
                .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(anchor.len());
            refs.push(Reference {
                file: PathBuf::from(path),
                want: Want::Anchor(anchor[..len].to_owned()),
                text: format!("{path}#{}", &anchor[..len]),
            });
            continue;
        }
        let end = (at + path.len() + 40).min(flat.len());
        let end = (0..=end - at)
            .rev()
            .find(|&i| flat.is_char_boundary(at + i))
            .unwrap_or(0);
        after_file(Path::new(path), after, &flat[at..at + end], &mut refs);
    }

    // README, "Title" and its kin, and runbook, "Title".
    for word in ["README", "runbook"] {
        for (at, _) in flat.match_indices(word) {
            let start = flat[..at]
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_path_char(c))
                .last()
                .map_or(at, |(i, _)| i);
            let before = &flat[start..at];
            if word == "runbook" && (flat[..at].ends_with("README ") || !before.is_empty()) {
                continue;
            }
            if word == "README"
                && before.contains(|c: char| c.is_ascii_alphanumeric())
                && !before.ends_with('/')
            {
                continue;
            }
            let mut rest = &flat[at + word.len()..];
            let mut name = format!("{before}{word}");
            if let Some(r) = rest.strip_prefix(".md") {
                rest = r;
                name.push_str(".md");
            }
            if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '\'') {
                continue; // README's, READMEs, runbooks
            }
            if word == "README" {
                rest = rest.strip_prefix(" runbook").unwrap_or(rest);
            }
            let title = rest
                .strip_prefix(", ")
                .or_else(|| rest.strip_prefix(" ("))
                .or_else(|| rest.strip_prefix(' ').filter(|r| r.starts_with('\'')))
                .and_then(quoted);
            let Some(title) = title else { continue };
            let file = if name.contains('/') {
                match resolve(
                    root,
                    from,
                    name.trim_end_matches(".md").trim_end_matches("README"),
                ) {
                    Some(dir) => dir.join("README.md"),
                    None => {
                        problems.push(format!("`{name}` does not exist"));
                        continue;
                    }
                }
            } else {
                PathBuf::from("README.md")
            };
            refs.push(Reference {
                file,
                text: format!("{name} \"{title}\""),
                want: Want::Title(title),
            });
        }
    }

    // Any other path to a Markdown file (`crates/x/README.md`, `../y/README.md`).
    for (at, _) in flat.match_indices(".md") {
        let end = at + 3;
        if flat[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = flat[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_path_char(c))
            .last()
            .map_or(at, |(i, _)| i);
        let path = &flat[start..end];
        if !path.contains('/') || path.starts_with("docs/") || path.contains("://") {
            continue;
        }
        if resolve(root, from, path).is_none() {
            problems.push(format!("`{path}` does not exist"));
        }
    }

    if let Some(links) = links {
        // A Markdown file's own sections: see "Title" (not in code, where it is an example).
        for (at, _) in links.match_indices("see ") {
            if links[..at].ends_with(|c: char| c.is_alphanumeric()) {
                continue;
            }
            if let Some(title) = quoted(&links[at + 4..]) {
                refs.push(Reference {
                    file: from.to_path_buf(),
                    text: format!("see \"{title}\""),
                    want: Want::Title(title),
                });
            }
        }
        // Relative links, and their anchors.
        for (at, _) in links.match_indices("](") {
            let target = &links[at + 2..];
            let Some(end) = target.find([')', ' ']) else {
                continue;
            };
            let target = &target[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target, None),
            };
            let file = if path.is_empty() {
                from.to_path_buf()
            } else {
                let written = normalise(&from.parent().unwrap_or(Path::new("")).join(path));
                if !root.join(&written).exists() {
                    problems.push(format!("the link `{target}` leads nowhere"));
                    continue;
                }
                written
            };
            if let Some(anchor) = anchor {
                refs.push(Reference {
                    file,
                    want: Want::Anchor(anchor.to_owned()),
                    text: format!("({target})"),
                });
            }
        }
    }
    (refs, problems)
}

/// Bare `section N` in a file of `docs/` with numbered sections: its own section N.
fn own_sections(from: &Path, flat: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    for (at, _) in flat.match_indices("section") {
        if flat[..at].ends_with(|c: char| c.is_alphanumeric()) || flat[..at].ends_with(".md, ") {
            continue;
        }
        let rest = &flat[at + "section".len()..];
        let Some(rest) = rest.strip_prefix("s ").or_else(|| rest.strip_prefix(' ')) else {
            continue;
        };
        for number in numbers(rest) {
            refs.push(Reference {
                file: from.to_path_buf(),
                text: format!("section {number}"),
                want: Want::Number(number),
            });
        }
    }
    refs
}

/// In an index without numbered sections of its own (`docs/README.md`), a table row
/// whose first cell links a file: the bare `section N` in that row are that file's.
fn index_rows(from: &Path, text: &str) -> Vec<Reference> {
    let dir = from.parent().unwrap_or(Path::new(""));
    let mut refs = Vec::new();
    for line in without_code_blocks(text).lines() {
        let Some(cell) = line.strip_prefix("| [") else {
            continue;
        };
        let Some((_, target)) = cell.split_once("](") else {
            continue;
        };
        let Some((target, _)) = target.split_once(')') else {
            continue;
        };
        let file = normalise(&dir.join(target));
        refs.extend(own_sections(&file, &flatten(line)));
    }
    refs
}

/// The inline code spans of a Markdown text (outside fenced blocks).
fn code_spans(text: &str) -> Vec<String> {
    let text = without_code_blocks(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

/// In `docs/`: backticked repository paths exist, and backticked test names are
/// functions somewhere in the repository.
fn docs_claims(root: &Path, text: &str, functions: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for span in code_spans(text) {
        let is_path = ["src/", "crates/", "tests/", "events/", "tools/", "docs/"]
            .iter()
            .any(|p| span.starts_with(p));
        if is_path && !span.contains(' ') {
            if !root.join(&span).exists() {
                problems.push(format!("`{span}` does not exist"));
            }
            continue;
        }
        let snake = span.starts_with(|c: char| c.is_ascii_lowercase())
            && span
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if snake && span.matches('_').count() >= 3 && !functions.contains(&span) {
            problems.push(format!("`{span}` names no function in the repository"));
        }
    }
    problems
}

/// Every `fn name` in the Rust files.
fn functions(files: &[(PathBuf, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, text) in files {
        if path.extension().is_some_and(|e| e == "rs") {
            for (at, _) in text.match_indices("fn ") {
                let name: String = text[at + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Whether `reference` resolves; an error message if not.
fn check(
    root: &Path,
    reference: &Reference,
    cache: &mut BTreeMap<PathBuf, Option<Sections>>,
) -> Option<String> {
    let sections = cache.entry(reference.file.clone()).or_insert_with(|| {
        fs::read_to_string(root.join(&reference.file))
            .ok()
            .map(|t| sections(&t))
    });
    let Some(sections) = sections else {
        return Some(format!("{}: no such file", reference.text));
    };
    let found = match &reference.want {
        Want::File => true,
        Want::Number(n) => sections.numbers.contains(n),
        Want::Title(t) => sections.titles.contains(t),
        Want::Anchor(a) => sections.anchors.contains(a),
    };
    (!found).then(|| {
        format!(
            "{}: {} has no {}",
            reference.text,
            reference.file.display(),
            match &reference.want {
                Want::File => "file".to_owned(),
                Want::Number(n) => format!("section {n}"),
                Want::Title(t) => format!("heading or runbook entry \"{t}\""),
                Want::Anchor(a) => format!("heading with the anchor #{a}"),
            }
        )
    })
}

/// Every problem in `files` (relative path, text), and how many references resolved.
fn problems(root: &Path, files: &[(PathBuf, String)]) -> (usize, Vec<String>) {
    let functions = functions(files);
    // The Markdown files as given (a test plants some); anything else is read from disk.
    let mut cache: BTreeMap<PathBuf, Option<Sections>> = files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "md"))
        .map(|(p, t)| (p.clone(), Some(sections(t))))
        .collect();
    let mut out = Vec::new();
    let mut resolved = 0;
    for (path, text) in files {
        let markdown = path.extension().is_some_and(|e| e == "md");
        let source = if markdown {
            without_code_blocks(text)
        } else {
            text.clone()
        };
        let flat = flatten(&source);
        let links = markdown.then(|| flatten(&without_code_spans(&source)));
        let (mut refs, found) = references(root, path, &flat, links.as_deref());
        let in_docs = path.starts_with("docs") && markdown;
        if in_docs && !sections(text).numbers.is_empty() {
            refs.extend(own_sections(path, &flat));
        } else if in_docs {
            refs.extend(index_rows(path, text));
        }
        out.extend(found.into_iter().map(|p| format!("{}: {p}", path.display())));
        if in_docs {
            out.extend(
                docs_claims(root, text, &functions)
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            );
        }
        for r in &refs {
            match check(root, r, &mut cache) {
                Some(p) => out.push(format!("{}: {p}", path.display())),
                None => resolved += 1,
            }
        }
    }
    (resolved, out)
}

fn repository() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files
}

#[test]
fn every_reference_to_a_document_or_section_resolves() {
    let files = repository();
    let (resolved, problems) = problems(&root(), &files);
    assert!(
        problems.is_empty(),
        "{} broken reference(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(
        resolved >= MIN_REFERENCES,
        "only {resolved} references found in {} files: the walk or the patterns are broken",
        files.len()
    );
}

/// The check itself: each kind of broken reference, planted in an otherwise real
/// repository, is reported; each good one is not.
#[test]
fn a_broken_reference_of_each_kind_fails_the_check() {
    let root = root();
    let repo = repository();
    let with = |path: &str, text: &str| {
        let mut files: Vec<(PathBuf, String)> = repo
            .iter()
            .filter(|(p, _)| p != Path::new(path))
            .cloned()
            .collect();
        files.push((PathBuf::from(path), text.to_owned()));
        let prefix = format!("{path}: ");
        let found: Vec<String> = problems(&root, &files)
            .1
            .into_iter()
            .filter(|p| p.starts_with(&prefix))
            .collect();
        found
    };
    let good = [
        ("src/x.rs", "//! The contract (docs/protocol.md, section 1)."),
        (
            "src/x.rs",
            "/// The swap (docs/protocol.md, sections 2\n/// and 3).",
        ),
        ("src/x.rs", "// docs/protocol.md (\"Known limits\") says so"),
        (
            "Makefile",
            "## (README, \"Settling the engine's\n## undocumented behaviours on your account: make aws-check\")",
        ),
        (
            "template.yaml",
            "  see the\n  README runbook, \"A rotation is stuck\".",
        ),
        ("src/x.rs", "// see README 'Invoking it by hand'; it re-derives"),
        (
            "notes.md",
            "[gaps](docs/gaps.md#2-the-second-gap-accepted-after-use)",
        ),
        (
            "notes.md",
            "# Notes\n\n## Consumers: the client\n\nSee the client (see \"Consumers\").",
        ),
    ];
    for (path, text) in good {
        let found = with(path, text);
        assert!(found.is_empty(), "{text:?} in {path}: {found:?}");
    }
    let bad = [
        ("src/x.rs", "//! The contract (docs/protocol.md, section 99)."),
        (
            "src/x.rs",
            "/// The swap (docs/protocol.md, sections 2\n/// and 42).",
        ),
        ("src/x.rs", "// docs/protocol.md (\"Known limitz\") says so"),
        ("src/x.rs", "// (docs/nowhere.md, section 1)"),
        (
            "Makefile",
            "## (README, \"Settling the engine's undocumented behaviours\")",
        ),
        (
            "template.yaml",
            "  see the README runbook, \"A rotation is stock\".",
        ),
        ("src/x.rs", "// see README 'Invoking it by foot'; it re-derives"),
        ("notes.md", "[gaps](docs/gaps.md#9-no-such-gap)"),
        ("notes.md", "[gone](docs/gone.md)"),
        (
            "notes.md",
            "# Notes\n\n## Consumers: the client\n\nSee the client (see \"Consumer\").",
        ),
        ("src/x.rs", "// (crates/keyshift-nothing/README.md)"),
        ("docs/protocol.md", "## 1. One\n\nAs section 2 says."),
        ("docs/protocol.md", "## 1. One\n\nSee `src/nothing.rs`."),
        (
            "docs/README.md",
            "# Index\n\n| [gaps.md](gaps.md) | the gaps (section 9) |",
        ),
        (
            "docs/protocol.md",
            "## 1. One\n\nTest `a_test_that_was_never_written`.",
        ),
        ("src/x.rs", &["// see ", "DESIGN", ".md, section 5"].concat()),
        ("src/x.rs", &["// the ", "research", " note on replicas"].concat()),
        ("README.md", &["See ../", "shared/notes for why."].concat()),
    ];
    for (path, text) in bad {
        assert!(!with(path, text).is_empty(), "{text:?} in {path} was not caught");
    }
}
