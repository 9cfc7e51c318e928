//! Compiles the browser files into the crate: every file of `clients/widget/src` (served at the router's root)
//! and of `clients/js/src` (served under `client/`), each with its content type, a strong ETag and, when it
//! saves bytes, a gzip copy made here once instead of on every request.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::{env, fs};

use sha2::{Digest, Sha256};

/// (directory relative to the workspace root, URL prefix under the router)
const SOURCES: &[(&str, &str)] = &[("clients/widget/src", ""), ("clients/js/src", "client/")];

fn content_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1;
    Some(match extension {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "d.ts" | "ts" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut table = String::from("&[\n");
    for (dir, prefix) in SOURCES {
        let dir = root.join(dir);
        // A directory is watched as a whole: files added, removed or changed rebuild the table.
        println!("cargo:rerun-if-changed={}", dir.display());
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file names are UTF-8")
                .to_owned();
            let Some(content_type) = content_type(&name) else {
                continue;
            };
            let body = fs::read(&path).expect("a browser file is readable");
            let etag = hex(&Sha256::digest(&body)[..12]);
            let gzip = gzip(&body)
                .filter(|zipped| zipped.len() + 64 < body.len())
                .map(|zipped| {
                    let zipped_path = out.join(format!("{etag}.gz"));
                    fs::write(&zipped_path, zipped).expect("OUT_DIR is writable");
                    zipped_path
                });
            writeln!(
                table,
                "    Asset {{ path: {path:?}, content_type: {content_type:?}, etag: {etag:?}, body: include_bytes!({body:?}), gzip: {gzip} }},",
                path = format!("{prefix}{name}"),
                etag = format!("\"{etag}\""),
                body = path.display().to_string(),
                gzip = match gzip {
                    Some(zipped) => format!("Some(include_bytes!({:?}))", zipped.display().to_string()),
                    None => "None".to_owned(),
                },
            )
            .expect("writing to a String");
        }
    }
    table.push(']');
    fs::write(out.join("assets.rs"), table).expect("OUT_DIR is writable");
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
