//! Regression corpora: malformed inputs found so far (by the fuzz targets, by hand, by earlier tests), one file
//! per case, replayed by the tests of the crate that owns the decoder with the outcome each must get.
//!
//! A case is a file `<crate>/tests/corpus/<decoder>/<name>.txt`:
//!
//! ```text
//! # Why it is here: what it breaks, and who found it (fuzz target, test, review).
//! expect: invalid_frame
//! id: r1
//! ---
//! {"type":"send","id":"r1","conversation":42}
//! ```
//!
//! Lines `key: value` (and `#` comments) up to a line `---`, then the input: the rest of the file, less one final
//! newline. With `encoding: hex` the input is written as hex digits (whitespace between them ignored), for bytes
//! that are not UTF-8. What the keys mean is the replaying test's business; `expect` is always the outcome. See
//! `docs/fuzzing.md` for adding a case.

use std::path::Path;

/// One case of a corpus.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Case {
    /// The file name, without `.txt`.
    pub name: String,
    /// The `key: value` lines, in order.
    pub headers: Vec<(String, String)>,
    /// The input.
    pub input: Vec<u8>,
}

impl Case {
    /// The value of header `key`.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The `expect` header: the outcome the input must get.
    pub fn expect(&self) -> &str {
        match self.header("expect") {
            Some(expect) => expect,
            None => panic!("corpus case {} has no `expect:` line", self.name),
        }
    }

    /// The input as text.
    pub fn text(&self) -> &str {
        match std::str::from_utf8(&self.input) {
            Ok(text) => text,
            Err(error) => panic!("corpus case {} is not UTF-8: {error}", self.name),
        }
    }
}

/// Reads every `*.txt` case of `dir`, sorted by name. Panics on a case it cannot read, and on an empty corpus.
pub fn read(dir: impl AsRef<Path>) -> Vec<Case> {
    let dir = dir.as_ref();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => panic!("cannot read corpus {}: {error}", dir.display()),
    };
    let mut cases: Vec<Case> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .map(|path| parse_file(&path))
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!cases.is_empty(), "corpus {} has no cases", dir.display());
    cases
}

fn parse_file(path: &Path) -> Case {
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => panic!("cannot read {}: {error}", path.display()),
    };
    parse(name, &bytes)
}

/// Reads one case from the bytes of its file.
pub fn parse(name: impl Into<String>, bytes: &[u8]) -> Case {
    let name = name.into();
    let mut headers = Vec::new();
    let mut rest = bytes;
    loop {
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            panic!("corpus case {name}: no `---` line before the input");
        };
        let line = String::from_utf8_lossy(&rest[..end]);
        let line = line.trim_end_matches('\r');
        rest = &rest[end + 1..];
        if line == "---" {
            break;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((key, value)) => headers.push((key.trim().to_owned(), value.trim().to_owned())),
            None => panic!("corpus case {name}: `{line}` is not `key: value`"),
        }
    }
    let input = rest.strip_suffix(b"\n").unwrap_or(rest);
    let input = match headers
        .iter()
        .find(|(key, _)| key == "encoding")
        .map(|(_, v)| v.as_str())
    {
        None => input.to_vec(),
        Some("hex") => hex(&name, input),
        Some(other) => panic!("corpus case {name}: unknown encoding `{other}`"),
    };
    Case { name, headers, input }
}

fn hex(name: &str, text: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("corpus case {name}: bad hex {:?}", String::from_utf8_lossy(pair)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_have_headers_and_an_input() {
        let case = parse("x", b"# a comment\nexpect: bad_json\nid: r1\n---\n{\"type\":\n\n");
        assert_eq!(case.expect(), "bad_json");
        assert_eq!(case.header("id"), Some("r1"));
        assert_eq!(case.input, b"{\"type\":\n");
        let hex = parse("y", b"expect: x\nencoding: hex\n---\n7b ff\nfe 7d\n");
        assert_eq!(hex.input, [0x7b, 0xff, 0xfe, 0x7d]);
    }
}
