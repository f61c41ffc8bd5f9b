//! Bytes to text: gzip detection by magic bytes, whole-buffer inflation, UTF-8 repair.
//!
//! A delivered log object is a few MB at most, so it is inflated in one call with libdeflate (the
//! fastest inflater for whole buffers), sized from the gzip trailer. Multi-member or oddly sized
//! streams, and truncated ones, go through flate2, which keeps whatever it could inflate.

use std::borrow::Cow;
use std::io::Read;

/// What decoding had to say about a buffer it still returned text for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The gzip stream broke off; the text is what came before.
    Truncated(String),
    /// Bytes that were not UTF-8 were replaced with U+FFFD.
    InvalidUtf8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("larger than {limit} bytes once inflated (raise --max-file-size to read it)")]
    TooLarge { limit: u64 },
    #[error("not a gzip stream: {0}")]
    Gzip(String),
}

/// The decoded text of a buffer.
#[derive(Debug)]
pub struct Decoded<'b> {
    pub text: Cow<'b, str>,
    /// Size after inflation.
    pub bytes: u64,
    pub compressed: bool,
    pub damage: Vec<Damage>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes `data` (gzip or plain), never producing more than `limit` bytes. Inflated bytes go to
/// `scratch`, which callers reuse across files: it only grows, so it is neither zeroed nor
/// faulted in again for every file.
pub fn decode<'b>(data: &'b [u8], scratch: &'b mut Vec<u8>, limit: u64) -> Result<Decoded<'b>, DecodeError> {
    let mut damage = Vec::new();
    let compressed = data.starts_with(&GZIP_MAGIC);
    let bytes: &[u8] = if compressed {
        let (size, truncated) = inflate(data, scratch, limit)?;
        if let Some(message) = truncated {
            damage.push(Damage::Truncated(message));
        }
        &scratch[..size]
    } else if data.len() as u64 > limit {
        return Err(DecodeError::TooLarge { limit });
    } else {
        data
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            damage.push(Damage::InvalidUtf8);
            Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    Ok(Decoded {
        text,
        bytes: bytes.len() as u64,
        compressed,
        damage,
    })
}

/// Inflates into `out`; returns the inflated size and, for a broken stream, what went wrong.
fn inflate(data: &[u8], out: &mut Vec<u8>, limit: u64) -> Result<(usize, Option<String>), DecodeError> {
    // ISIZE: the last four bytes hold the inflated size modulo 2^32.
    if let Some(tail) = data.len().checked_sub(4).and_then(|at| data.get(at..))
        && let Ok(tail) = <[u8; 4]>::try_from(tail)
    {
        let size = u64::from(u32::from_le_bytes(tail));
        if size <= limit {
            let size = size as usize;
            if out.len() < size {
                out.resize(size, 0);
            }
            let mut inflater = libdeflater::Decompressor::new();
            // libdeflate stops after the first member. If the stream has several, the trailer at
            // the end of the buffer belongs to the last one, and its CRC will not be this output's.
            let trailer_crc = data
                .len()
                .checked_sub(8)
                .and_then(|at| data.get(at..at + 4))
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes);
            if let Ok(written) = inflater.gzip_decompress(data, &mut out[..size])
                && written == size
                && trailer_crc == Some(libdeflater::crc32(&out[..size]))
            {
                return Ok((size, None));
            }
        }
    }
    out.clear();
    let mut reader = flate2::read::MultiGzDecoder::new(data).take(limit + 1);
    let outcome = reader.read_to_end(out);
    if out.len() as u64 > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    match outcome {
        Ok(_) => Ok((out.len(), None)),
        Err(err) if out.is_empty() => Err(DecodeError::Gzip(err.to_string())),
        Err(err) => {
            let message = format!("gzip stream broken after {} bytes: {err}", out.len());
            Ok((out.len(), Some(message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn plain_and_gzip() {
        let mut scratch = Vec::new();
        let d = decode(b"{\"Records\":[]}", &mut scratch, 1 << 20).expect("plain");
        assert!(!d.compressed && d.damage.is_empty());
        let data = gzip(b"{\"Records\":[]}");
        let mut scratch = vec![b'x'; 100];
        let d = decode(&data, &mut scratch, 1 << 20).expect("gzip");
        assert_eq!((&*d.text, d.compressed), ("{\"Records\":[]}", true));
    }

    #[test]
    fn multi_member_gzip() {
        let mut data = gzip(b"{\"a\":1}\n");
        data.extend(gzip(b"{\"b\":2}\n"));
        let mut scratch = Vec::new();
        let d = decode(&data, &mut scratch, 1 << 20).expect("multi");
        assert_eq!(d.text, "{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn truncated_gzip_keeps_the_prefix() {
        let body: String = (0..2000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let data = gzip(body.as_bytes());
        let mut scratch = Vec::new();
        let d = decode(&data[..data.len() / 2], &mut scratch, 1 << 20).expect("prefix");
        assert!(matches!(d.damage[..], [Damage::Truncated(_)]), "{:?}", d.damage);
        assert!(!d.text.is_empty() && body.starts_with(&*d.text));
        assert!(decode(&data[..5], &mut Vec::new(), 1 << 20).is_err());
    }

    #[test]
    fn limits_and_bombs() {
        let zeros = gzip(&vec![b' '; 5 << 20]);
        assert_eq!(
            decode(&zeros, &mut Vec::new(), 1 << 20).map(|_| ()),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        assert!(decode(&[b' '; 100], &mut Vec::new(), 10).is_err());
    }

    #[test]
    fn invalid_utf8_is_repaired() {
        let mut scratch = Vec::new();
        let d = decode(b"{\"a\":\"\xff\xfe\"}", &mut scratch, 100).expect("lossy");
        assert_eq!(d.damage, [Damage::InvalidUtf8]);
        assert_eq!(d.text, "{\"a\":\"\u{fffd}\u{fffd}\"}");
    }
}
