//! Bytes to text: gzip detection by magic bytes, whole-buffer inflation, UTF-8 repair.
//!
//! A delivered log object is a few MB at most, so it is inflated in one call with libdeflate (the
//! fastest inflater for whole buffers), sized from the gzip trailer. Multi-member or oddly sized
//! streams, and truncated ones, go through flate2, which keeps whatever it could inflate.

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
pub struct Decoded {
    pub text: String,
    /// Size after inflation.
    pub bytes: u64,
    pub compressed: bool,
    pub damage: Vec<Damage>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes `data` (gzip or plain), never producing more than `limit` bytes.
pub fn decode(data: Vec<u8>, limit: u64) -> Result<Decoded, DecodeError> {
    let mut damage = Vec::new();
    let compressed = data.starts_with(&GZIP_MAGIC);
    let bytes = if compressed {
        let (bytes, truncated) = inflate(&data, limit)?;
        if let Some(message) = truncated {
            damage.push(Damage::Truncated(message));
        }
        bytes
    } else if data.len() as u64 > limit {
        return Err(DecodeError::TooLarge { limit });
    } else {
        data
    };
    let size = bytes.len() as u64;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            damage.push(Damage::InvalidUtf8);
            String::from_utf8_lossy(err.as_bytes()).into_owned()
        }
    };
    Ok(Decoded {
        text,
        bytes: size,
        compressed,
        damage,
    })
}

fn inflate(data: &[u8], limit: u64) -> Result<(Vec<u8>, Option<String>), DecodeError> {
    // ISIZE: the last four bytes hold the inflated size modulo 2^32.
    if let Some(tail) = data.len().checked_sub(4).and_then(|at| data.get(at..))
        && let Ok(tail) = <[u8; 4]>::try_from(tail)
    {
        let size = u64::from(u32::from_le_bytes(tail));
        if size <= limit {
            let mut out = vec![0u8; size as usize];
            let mut inflater = libdeflater::Decompressor::new();
            // libdeflate stops after the first member. If the stream has several, the trailer at
            // the end of the buffer belongs to the last one, and its CRC will not be this output's.
            let trailer_crc = data
                .len()
                .checked_sub(8)
                .and_then(|at| data.get(at..at + 4))
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes);
            if let Ok(written) = inflater.gzip_decompress(data, &mut out)
                && written == out.len()
                && trailer_crc == Some(libdeflater::crc32(&out))
            {
                return Ok((out, None));
            }
        }
    }
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(data).take(limit + 1);
    let outcome = reader.read_to_end(&mut out);
    if out.len() as u64 > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    match outcome {
        Ok(_) => Ok((out, None)),
        Err(err) if out.is_empty() => Err(DecodeError::Gzip(err.to_string())),
        Err(err) => {
            let message = format!("gzip stream broken after {} bytes: {err}", out.len());
            Ok((out, Some(message)))
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
        let d = decode(b"{\"Records\":[]}".to_vec(), 1 << 20).expect("plain");
        assert!(!d.compressed && d.damage.is_empty());
        let d = decode(gzip(b"{\"Records\":[]}"), 1 << 20).expect("gzip");
        assert_eq!((d.text.as_str(), d.compressed), ("{\"Records\":[]}", true));
    }

    #[test]
    fn multi_member_gzip() {
        let mut data = gzip(b"{\"a\":1}\n");
        data.extend(gzip(b"{\"b\":2}\n"));
        let d = decode(data, 1 << 20).expect("multi");
        assert_eq!(d.text, "{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn truncated_gzip_keeps_the_prefix() {
        let body: String = (0..2000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let data = gzip(body.as_bytes());
        let d = decode(data[..data.len() / 2].to_vec(), 1 << 20).expect("prefix");
        assert!(matches!(d.damage[..], [Damage::Truncated(_)]), "{:?}", d.damage);
        assert!(!d.text.is_empty() && body.starts_with(&d.text));
        assert!(decode(data[..5].to_vec(), 1 << 20).is_err());
    }

    #[test]
    fn limits_and_bombs() {
        let zeros = gzip(&vec![b' '; 5 << 20]);
        assert_eq!(
            decode(zeros, 1 << 20).map(|_| ()),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        assert!(decode(vec![b' '; 100], 10).is_err());
    }

    #[test]
    fn invalid_utf8_is_repaired() {
        let d = decode(b"{\"a\":\"\xff\xfe\"}".to_vec(), 100).expect("lossy");
        assert_eq!(d.damage, [Damage::InvalidUtf8]);
        assert_eq!(d.text, "{\"a\":\"\u{fffd}\u{fffd}\"}");
    }
}
