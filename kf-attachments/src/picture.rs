//! Images: their size and a thumbnail, decoded with limits so that a small file claiming a huge picture (a
//! decompression bomb) is refused instead of filling the memory.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use kf_core::limits::THUMBNAIL_MAX_SIDE;

/// The widest or tallest picture decoded, in pixels.
const MAX_SIDE: u32 = 12_000;

/// Most memory one decode may take, in bytes.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// What an image is: its size and its thumbnail (PNG).
#[derive(Debug)]
pub(crate) struct Picture {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) thumbnail: Vec<u8>,
}

/// The image format of a sniffed media type, for the types thumbnails are made of.
fn format_of(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Decodes an image and makes its thumbnail (at most [`THUMBNAIL_MAX_SIDE`] a side, aspect kept, never
/// enlarged). `None` for a type that is not a decodable image; an error for bytes that do not decode.
pub(crate) fn picture(content_type: &str, bytes: &[u8]) -> Option<Result<Picture, String>> {
    let format = format_of(content_type)?;
    Some(decode(format, bytes))
}

fn decode(format: ImageFormat, bytes: &[u8]) -> Result<Picture, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|error| error.to_string())?;
    let (width, height) = (image.width(), image.height());
    let small = if width <= THUMBNAIL_MAX_SIDE && height <= THUMBNAIL_MAX_SIDE {
        image
    } else {
        image.thumbnail(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE)
    };
    let mut thumbnail = Vec::new();
    small
        .write_to(&mut Cursor::new(&mut thumbnail), ImageFormat::Png)
        .map_err(|error| error.to_string())?;
    Ok(Picture {
        width,
        height,
        thumbnail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encode");
        bytes
    }

    #[test]
    fn a_large_image_gets_its_size_and_a_small_thumbnail() {
        let picture = picture("image/png", &png(1000, 500))
            .expect("an image")
            .expect("decodes");
        assert_eq!((picture.width, picture.height), (1000, 500));
        let thumbnail = image::load_from_memory(&picture.thumbnail).expect("a PNG thumbnail");
        assert_eq!((thumbnail.width(), thumbnail.height()), (320, 160));
    }

    #[test]
    fn a_small_image_is_its_own_thumbnail_and_broken_bytes_are_refused() {
        let small = picture("image/png", &png(40, 30))
            .expect("an image")
            .expect("decodes");
        let thumbnail = image::load_from_memory(&small.thumbnail).expect("a PNG thumbnail");
        assert_eq!((thumbnail.width(), thumbnail.height()), (40, 30));
        let mut broken = png(40, 30);
        broken.truncate(60);
        assert!(picture_of_broken(&broken).is_err());
        assert!(picture("application/pdf", b"%PDF-1.7").is_none());
    }

    fn picture_of_broken(bytes: &[u8]) -> Result<Picture, String> {
        picture("image/png", bytes).expect("an image type")
    }
}
