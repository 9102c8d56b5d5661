//! Bytes -> RGB: format sniffing with messages a person can act on, size limits checked from
//! the header before pixels are allocated, EXIF orientation, transparency composited on white.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage, imageops};

use super::{MAX_DECODED_BYTES, MAX_PIXELS, MAX_SIDE};
use crate::error::{Error, Result};

const MB: f64 = 1024.0 * 1024.0;

pub(super) const SUPPORTED: &str = "JPEG, PNG, WebP, GIF or BMP";

/// Names the formats people drop that sortwise cannot read, from their magic bytes, so the
/// message can say what the file is ("an HEIC photo") rather than only what it is not.
pub(super) fn unsupported_format(bytes: &[u8]) -> Option<&'static str> {
    let at = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[]);
    // ISO base media (HEIF/HEIC, AVIF, MP4, MOV, CR3): a `ftyp` box first, its major brand,
    // then compatible brands up to the box's size.
    if at(4..8) == b"ftyp" {
        let word = |i: usize| -> [u8; 4] { at(i..i + 4).try_into().unwrap_or([0; 4]) };
        let size = u32::from_be_bytes(word(0)) as usize;
        let brands: Vec<[u8; 4]> = std::iter::once(word(8))
            .chain((16..size.min(bytes.len()).min(256)).step_by(4).map(word))
            .collect();
        let has = |names: &[&[u8; 4]]| brands.iter().any(|b| names.contains(&b));
        return Some(if has(&[b"avif", b"avis"]) {
            "AVIF"
        } else if has(&[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"]) {
            "HEIC"
        } else if has(&[b"mif1", b"msf1"]) {
            "HEIF"
        } else if has(&[b"crx "]) {
            "Canon CR3 raw"
        } else {
            "MP4/MOV video"
        });
    }
    let text = {
        let head = &bytes[..bytes.len().min(1024)];
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let start = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(head.len());
        &head[start..]
    };
    let lower: Vec<u8> = text.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<svg") || (lower.starts_with(b"<") && contains(b"<svg")) {
        return Some("SVG");
    }
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return Some("HTML");
    }
    let magic: &[(&[u8], &str)] = &[
        (b"%PDF", "PDF"),
        (b"II*\0", "TIFF (or camera raw)"),
        (b"MM\0*", "TIFF (or camera raw)"),
        (b"8BPS", "Photoshop (PSD)"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
        (b"\xFF\x4F\xFF\x51", "JPEG 2000"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x1F\x8B", "gzip archive"),
        (b"\0\0\x01\0", "ICO icon"),
        (b"qoif", "QOI"),
        (b"DDS ", "DDS"),
        (b"#?RADIANCE", "Radiance HDR"),
        (b"\x76\x2F\x31\x01", "OpenEXR"),
    ];
    magic
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|(_, name)| *name)
}

/// Whether `bytes` look like text: what a file renamed `.jpg` usually is.
pub(super) fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the window is still text.
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    };
    valid
        && !head.is_empty()
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t' | 0x0C))
}

/// Whether a JPEG ends before its end-of-image marker. zune-jpeg (non-strict, as `image` runs
/// it) fills what is missing with grey and reports success, so a photo cut off by an
/// interrupted copy would be embedded as half grey. Walks the marker segments by their lengths
/// (an EXIF thumbnail's own EOI sits inside APP1 and is skipped) and the entropy-coded data of
/// every scan; bytes after the EOI (motion photos append a video) do not matter.
pub(super) fn jpeg_is_truncated(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Fill bytes and stray data between segments, which decoders tolerate.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            0xD9 => return false,
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return true;
        };
        if len < 2 {
            return true;
        }
        i += len;
        if i > b.len() {
            return true;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker
            // inside the scan; any other marker ends it.
            loop {
                match b.get(i) {
                    None => return true,
                    Some(0xFF) => match b.get(i + 1) {
                        None => return true,
                        Some(0xFF) => i += 1,
                        Some(0x00 | 0xD0..=0xD7) => i += 2,
                        Some(_) => break,
                    },
                    Some(_) => i += 1,
                }
            }
        }
    }
}

/// Decode an encoded image (JPEG, PNG, WebP, GIF first frame, BMP) into RGB, honouring EXIF
/// orientation and compositing transparency onto white.
///
/// Memory: the frame is checked against [`MAX_PIXELS`] and [`MAX_DECODED_BYTES`] from the
/// header before it is allocated, and converted to RGB and oriented in place where the pixel
/// format allows, so a photo costs its decoded frame (or its 3-byte RGB copy, the larger) and
/// not a multiple of it.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty (0 bytes)".into()));
    }
    if let Some(name) = unsupported_format(bytes) {
        return Err(Error::Decode(format!(
            "{name} files are not supported; use {SUPPORTED} (convert it, or export it as JPEG)"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let format = match reader.format() {
        None if looks_like_text(bytes) => {
            return Err(Error::Decode(format!(
                "not a supported image format ({SUPPORTED}): the file holds text"
            )));
        }
        None => {
            return Err(Error::Decode(format!(
                "not a supported image format ({SUPPORTED})"
            )));
        }
        Some(f) => f,
    };
    if !matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
    ) {
        let name = format.extensions_str().first().copied().unwrap_or("this");
        return Err(Error::Decode(format!(
            "{} files are not supported; use {SUPPORTED}",
            name.to_ascii_uppercase()
        )));
    }
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(Error::Decode(
            "the JPEG file is truncated or corrupt: it ends before its end-of-image marker (was \
             the copy or download interrupted?)"
                .into(),
        ));
    }
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the image has no pixels ({w}x{h})")));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(Error::Decode(format!(
            "the image is {w}x{h} ({:.1} megapixels); the limit is {} megapixels (scale it down)",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    // `into_decoder` + `from_decoder` does not reserve the frame against `max_alloc` the way
    // `ImageReader::decode` does: without this a tiny 16-bit PNG takes what its header says.
    let frame = decoder.total_bytes();
    if frame > MAX_DECODED_BYTES {
        return Err(Error::Decode(format!(
            "the image is {w}x{h} with {:?} pixels: decoded it would take {:.0} MB, over the \
             limit of {:.0} MB (save it as an 8-bit JPEG or PNG, or scale it down)",
            decoder.color_type(),
            frame as f64 / MB,
            MAX_DECODED_BYTES as f64 / MB
        )));
    }
    limits.reserve(frame).map_err(decode_error)?;
    decoder.set_limits(limits).map_err(decode_error)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok(orient(to_rgb_on_white(img)?, orientation))
}

pub(super) fn decode_error(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(_) => Error::Decode(format!(
            "the image is too large to decode safely (limits: {MAX_SIDE} pixels per side, {} \
             megapixels, {:.0} MB decoded)",
            MAX_PIXELS / 1_000_000,
            MAX_DECODED_BYTES as f64 / MB
        )),
        image::ImageError::Unsupported(u) => Error::Decode(format!("unsupported image: {u}")),
        other => Error::Decode(format!("the file is corrupt or truncated ({other})")),
    }
}

/// RGB with transparency composited on white. The 8-bit formats are converted inside their own
/// buffer (RGBA packs down, gray expands up), so no second frame-sized buffer exists at once.
pub(super) fn to_rgb_on_white(img: DynamicImage) -> Result<RgbImage> {
    let (w, h) = (img.width(), img.height());
    let n = w as usize * h as usize;
    let v = match img {
        DynamicImage::ImageRgb8(rgb) => return Ok(rgb),
        DynamicImage::ImageLuma8(gray) => {
            let mut v = gray.into_raw();
            v.resize(3 * n, 0);
            // Backwards: pixel i's source (byte i) is read before any write reaches it.
            for i in (0..n).rev() {
                let g = v[i];
                v[3 * i..3 * i + 3].fill(g);
            }
            v
        }
        DynamicImage::ImageLumaA8(gray) => {
            let mut v = gray.into_raw();
            v.resize(3 * n, 0);
            for i in (0..n).rev() {
                let c = over_white(v[2 * i], v[2 * i + 1]);
                v[3 * i..3 * i + 3].fill(c);
            }
            v
        }
        other => {
            let mut v = if other.color().has_alpha() {
                other.into_rgba8().into_raw()
            } else {
                return Ok(other.into_rgb8());
            };
            // Forwards: pixel i's RGB lands at or before its RGBA source.
            for i in 0..n {
                let a = v[4 * i + 3];
                for c in 0..3 {
                    v[3 * i + c] = over_white(v[4 * i + c], a);
                }
            }
            v.truncate(3 * n);
            v.shrink_to_fit();
            v
        }
    };
    RgbImage::from_raw(w, h, v).ok_or_else(|| Error::Decode("pixel buffer size mismatch".into()))
}

/// EXIF orientation without a second frame: flips are in place and the quarter turns are an
/// in-place transpose followed by a flip (what `DynamicImage::apply_orientation` computes).
pub(super) fn orient(mut img: RgbImage, o: Orientation) -> RgbImage {
    match o {
        Orientation::NoTransforms => {}
        Orientation::Rotate90 => {
            img = transpose(img);
            imageops::flip_horizontal_in_place(&mut img);
        }
        Orientation::Rotate180 => imageops::rotate180_in_place(&mut img),
        Orientation::Rotate270 => {
            img = transpose(img);
            imageops::flip_vertical_in_place(&mut img);
        }
        Orientation::FlipHorizontal => imageops::flip_horizontal_in_place(&mut img),
        Orientation::FlipVertical => imageops::flip_vertical_in_place(&mut img),
        Orientation::Rotate90FlipH => img = transpose(img),
        Orientation::Rotate270FlipH => {
            img = transpose(img);
            imageops::rotate180_in_place(&mut img);
        }
    }
    img
}

/// Pixel (x, y) to (y, x) inside the same buffer, by following the permutation's cycles; one
/// bit per pixel records what has moved.
pub(super) fn transpose(img: RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = img.into_raw();
    let n = w * h;
    if w > 1 && h > 1 {
        let mut moved = vec![0u64; n.div_ceil(64)];
        for start in 0..n {
            if moved[start / 64] >> (start % 64) & 1 == 1 {
                continue;
            }
            let mut carry = [v[3 * start], v[3 * start + 1], v[3 * start + 2]];
            let mut i = start;
            loop {
                // Row-major index i = y*w + x of the source goes to x*h + y of the result.
                let j = (i % w) * h + i / w;
                let dst = &mut v[3 * j..3 * j + 3];
                let here = [dst[0], dst[1], dst[2]];
                dst.copy_from_slice(&carry);
                carry = here;
                moved[j / 64] |= 1 << (j % 64);
                i = j;
                if j == start {
                    break;
                }
            }
        }
    }
    RgbImage::from_raw(h as u32, w as u32, v).expect("same buffer, sides swapped")
}

/// One channel of a pixel with coverage `alpha`, composited onto white (rounded).
pub(super) fn over_white(c: u8, alpha: u8) -> u8 {
    let a = alpha as u32;
    ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8
}
