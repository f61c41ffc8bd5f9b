//! Bytes to text: gzip detection by magic bytes, inflation, byte order marks, UTF-16 to UTF-8,
//! UTF-8 repair.
//!
//! A delivered log object is a few MB at most, so it is inflated in one call with libdeflate (the
//! fastest inflater for whole buffers), sized from the gzip trailer when the trailer's size is one
//! the compressed bytes could produce. Multi-member, oddly sized or truncated streams, and
//! implausible trailers, go through flate2, whose output grows as data actually arrives and which
//! keeps whatever it could inflate. A worker holding more than [`SMALL_BYTES`] takes turns with
//! the others ([`Turn`]), so large files and bombs do not add up across workers.

use std::borrow::Cow;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// What decoding had to say about a buffer it still returned text for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The gzip stream broke off; the text is what came before.
    Truncated(String),
    /// Bytes that were not UTF-8 were replaced with U+FFFD.
    InvalidUtf8,
    /// The text was UTF-16 (Windows PowerShell 5 writes `>` and `Out-File` that way), and some of
    /// it (an unpaired surrogate, an odd last byte) was replaced with U+FFFD.
    InvalidUtf16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("larger than {limit} bytes once inflated (raise --max-file-size to read it)")]
    TooLarge { limit: u64 },
    #[error("not a gzip stream: {0}")]
    Gzip(String),
    /// A gzip stream whose trailer did not give its size (several members, a trailer that
    /// lies) inflated past the size at which the caller streams instead of holding it whole.
    #[error("inflates to more than {past} bytes: to be streamed")]
    Streamed { past: u64 },
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
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Deflate inflates at most 1032 bytes from one: a trailer claiming more than that of the
/// compressed size is a lie, and is not used to size a buffer.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Bytes a worker may hold (read and inflated) without taking its [`Turn`].
pub(crate) const SMALL_BYTES: usize = 64 << 20;

/// One worker at a time may hold more than [`SMALL_BYTES`].
static LARGE: Mutex<()> = Mutex::new(());
/// Workers holding a large turn now, and the most ever at once (for the tests).
static LARGE_NOW: AtomicUsize = AtomicUsize::new(0);
static LARGE_MOST: AtomicUsize = AtomicUsize::new(0);

/// A worker's right to hold more than [`SMALL_BYTES`] for the file in hand. Bytes in flight
/// across all workers stay under `workers × SMALL_BYTES` plus one file at the size limit. Taken
/// when needed, kept until dropped (after the file's records are scanned); the holder waits for
/// nothing else, so turns cannot deadlock.
#[derive(Default)]
pub(crate) struct Turn(Option<MutexGuard<'static, ()>>);

impl Turn {
    /// Waits for the large turn if `bytes` are more than a worker may hold without it.
    pub fn need(&mut self, bytes: u64) {
        if bytes > SMALL_BYTES as u64 && self.0.is_none() {
            let guard = LARGE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = LARGE_NOW.fetch_add(1, Ordering::SeqCst) + 1;
            LARGE_MOST.fetch_max(now, Ordering::SeqCst);
            self.0 = Some(guard);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.0.is_some() {
            // Counted out before the turn is given up.
            LARGE_NOW.fetch_sub(1, Ordering::SeqCst);
            self.0 = None;
        }
    }
}

/// The most workers that ever held a large turn at once in this process.
#[cfg(test)]
pub(crate) fn most_large_at_once() -> usize {
    LARGE_MOST.load(Ordering::SeqCst)
}

/// Decodes `data` (gzip or plain), never producing more than `limit` bytes. Inflated bytes go to
/// `scratch`, which callers reuse across files: it only grows, so it is neither zeroed nor
/// faulted in again for every file. A UTF-8 byte order mark is dropped; UTF-16 (with or without
/// its mark) is converted to UTF-8.
pub fn decode<'b>(data: &'b [u8], scratch: &'b mut Vec<u8>, limit: u64) -> Result<Decoded<'b>, DecodeError> {
    decode_in_turn(data, scratch, limit, u64::MAX, &mut Turn::default())
}

/// [`decode`], taking the worker's large `turn` when the output grows past [`SMALL_BYTES`]. A
/// gzip stream of unknown size that inflates past `stream_past` bytes is given up
/// ([`DecodeError::Streamed`]): the caller streams it.
pub(crate) fn decode_in_turn<'b>(
    data: &'b [u8],
    scratch: &'b mut Vec<u8>,
    limit: u64,
    stream_past: u64,
    turn: &mut Turn,
) -> Result<Decoded<'b>, DecodeError> {
    let mut damage = Vec::new();
    let compressed = data.starts_with(&GZIP_MAGIC);
    let bytes: &[u8] = if compressed {
        let (size, truncated) = inflate(data, scratch, limit, stream_past, turn)?;
        if let Some(message) = truncated {
            damage.push(Damage::Truncated(message));
        }
        scratch.get(..size).unwrap_or_default()
    } else if data.len() as u64 > limit {
        return Err(DecodeError::TooLarge { limit });
    } else {
        data
    };
    let text = match unmarked(bytes) {
        Marked::Utf8(bytes) => {
            let text = utf8_text(bytes);
            if matches!(text, Cow::Owned(_)) {
                damage.push(Damage::InvalidUtf8);
            }
            text
        }
        Marked::Utf16 { rest, big_endian } => {
            let mut out = Vec::new();
            let mut converter = Utf16::new(big_endian);
            converter.push(rest, &mut out);
            converter.finish(&mut out);
            if out.len() as u64 > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            if converter.replaced {
                damage.push(Damage::InvalidUtf16);
            }
            // What the converter writes is UTF-8 by construction; checked all the same.
            Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        }
    };
    Ok(Decoded {
        bytes: text.len() as u64,
        text,
        compressed,
        damage,
    })
}

/// `bytes` as text: borrowed when it is UTF-8, owned with U+FFFD for each invalid sequence
/// otherwise. Checked with SIMD (`simdutf8`): std's check was 1.5 % of a hunt's instructions.
pub(crate) fn utf8_text(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// What the start of a text says of its encoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Marked<'a> {
    /// UTF-8 (or anything else taken as such), without its byte order mark if it had one.
    Utf8(&'a [u8]),
    /// UTF-16, told by its mark or by NULs in every other byte of its first two characters
    /// (JSON starts with ASCII); `rest` is the text after the mark.
    Utf16 { rest: &'a [u8], big_endian: bool },
}

/// How `bytes` are encoded, and the bytes after a byte order mark.
pub(crate) fn unmarked(bytes: &[u8]) -> Marked<'_> {
    if let Some(rest) = bytes.strip_prefix(&UTF8_BOM) {
        return Marked::Utf8(rest);
    }
    match bytes {
        [0xff, 0xfe, rest @ ..] => Marked::Utf16 {
            rest,
            big_endian: false,
        },
        [0xfe, 0xff, rest @ ..] => Marked::Utf16 { rest, big_endian: true },
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Marked::Utf16 {
            rest: bytes,
            big_endian: false,
        },
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Marked::Utf16 {
            rest: bytes,
            big_endian: true,
        },
        _ => Marked::Utf8(bytes),
    }
}

/// UTF-16 to UTF-8, a piece at a time (a stream's chunks split code units and surrogate pairs
/// anywhere). Decoding is std's `char::decode_utf16`; what cannot be decoded becomes U+FFFD.
pub(crate) struct Utf16 {
    big_endian: bool,
    /// The first byte of a code unit whose second is in the next piece.
    odd: Option<u8>,
    /// A high surrogate whose pair may be in the next piece.
    high: Option<u16>,
    /// Something was replaced with U+FFFD.
    pub replaced: bool,
}

impl Utf16 {
    pub fn new(big_endian: bool) -> Utf16 {
        Utf16 {
            big_endian,
            odd: None,
            high: None,
            replaced: false,
        }
    }

    /// Converts `bytes`, the next piece of the text, appending to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        let mut units = Vec::with_capacity(bytes.len() / 2 + 2);
        units.extend(self.high.take());
        if let (Some(first), Some((&second, rest))) = (self.odd, bytes.split_first()) {
            self.odd = None;
            units.push(self.unit([first, second]));
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        units.extend(
            pairs
                .by_ref()
                .filter_map(|pair| <[u8; 2]>::try_from(pair).ok().map(|pair| self.unit(pair))),
        );
        if let [last] = pairs.remainder() {
            self.odd = Some(*last);
        }
        // A high surrogate at the end waits for the next piece, which may hold its pair.
        if units.last().is_some_and(|unit| (0xD800..0xDC00).contains(unit)) {
            self.high = units.pop();
        }
        self.decode(&units, out);
    }

    /// The end of the text: a surrogate or byte left over is replaced.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let high: Vec<u16> = self.high.take().into_iter().collect();
        self.decode(&high, out);
        if self.odd.take().is_some() {
            self.replaced = true;
            out.extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    fn unit(&self, pair: [u8; 2]) -> u16 {
        match self.big_endian {
            true => u16::from_be_bytes(pair),
            false => u16::from_le_bytes(pair),
        }
    }

    fn decode(&mut self, units: &[u16], out: &mut Vec<u8>) {
        let mut buf = [0; 4];
        for decoded in char::decode_utf16(units.iter().copied()) {
            let c = decoded.unwrap_or_else(|_| {
                self.replaced = true;
                char::REPLACEMENT_CHARACTER
            });
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Inflates into `out`; returns the inflated size and, for a broken stream, what went wrong.
fn inflate(
    data: &[u8],
    out: &mut Vec<u8>,
    limit: u64,
    stream_past: u64,
    turn: &mut Turn,
) -> Result<(usize, Option<String>), DecodeError> {
    if let Some(size) = trusted_size(data, limit) {
        turn.need(size as u64);
        if inflate_whole(data, out, size) {
            return Ok((size, None));
        }
    }
    inflate_stream(data, out, limit, stream_past, turn)
}

/// Inflates a one-member gzip stream of `size` bytes with libdeflate into `out[..size]`; false
/// when that fails (several members, a broken stream, a wrong size or CRC in the trailer).
fn inflate_whole(data: &[u8], out: &mut Vec<u8>, size: usize) -> bool {
    if out.capacity() < size {
        // Freshly allocated zeroes are not touched until written.
        *out = vec![0; size];
    } else if out.len() < size {
        // Only what the buffer never held is zeroed: zeroing a reused buffer for every file
        // cost as much as a tenth of inflating it. Bytes of an earlier file before `size` are
        // all overwritten (checked below: `written == size`), those after it are not read.
        out.resize(size, 0);
    }
    let mut inflater = libdeflater::Decompressor::new();
    // libdeflate stops after the first member, having checked that member's trailer (CRC-32 and
    // size) against what it inflated, but it does not say where that member ended. So: the last
    // eight bytes of the file must be that same trailer (the file's last trailer is the last
    // member's), and must occur nowhere earlier in the file. Then the first member's trailer is
    // the file's end, and the file is that one member. Otherwise (several members, even the same
    // one twice, or bytes after the member) the stream reader reads every member and reports
    // what follows them.
    let Some(trailer) = data.len().checked_sub(8).and_then(|at| data.get(at..)) else {
        return false;
    };
    let trailer_crc = trailer
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    let target = out.get_mut(..size).unwrap_or_default();
    matches!(inflater.gzip_decompress(data, target), Ok(written) if written == size)
        && trailer_crc == Some(libdeflater::crc32(target))
        && memchr::memmem::find(data.get(..data.len() - 1).unwrap_or_default(), trailer).is_none()
}

/// The inflated size a gzip stream's trailer gives (modulo 2^32), if `data` is gzip.
pub(crate) fn gzip_size(data: &[u8]) -> Option<u64> {
    if !data.starts_with(&GZIP_MAGIC) {
        return None;
    }
    let tail = data.len().checked_sub(4).and_then(|at| data.get(at..))?;
    Some(u64::from(u32::from_le_bytes(<[u8; 4]>::try_from(tail).ok()?)))
}

/// The inflated size the gzip trailer (ISIZE: the last four bytes, modulo 2^32) gives, when it
/// is within `limit` and one the compressed bytes could produce.
fn trusted_size(data: &[u8], limit: u64) -> Option<usize> {
    let tail = data.len().checked_sub(4).and_then(|at| data.get(at..))?;
    let size = usize::try_from(u32::from_le_bytes(<[u8; 4]>::try_from(tail).ok()?)).ok()?;
    let plausible = size <= data.len().saturating_mul(MAX_DEFLATE_RATIO);
    (plausible && size as u64 <= limit).then_some(size)
}

/// Inflates with flate2 (every member), the buffer growing as data arrives.
fn inflate_stream(
    data: &[u8],
    out: &mut Vec<u8>,
    limit: u64,
    stream_past: u64,
    turn: &mut Turn,
) -> Result<(usize, Option<String>), DecodeError> {
    const CHUNK: usize = 256 << 10;
    out.clear();
    let mut reader = flate2::read::MultiGzDecoder::new(data);
    let outcome = loop {
        let len = out.len();
        turn.need(len.saturating_add(CHUNK) as u64);
        out.resize(len.saturating_add(CHUNK), 0);
        let read = reader.read(out.get_mut(len..).unwrap_or_default());
        out.truncate(len + *read.as_ref().unwrap_or(&0));
        if out.len() as u64 > stream_past {
            return Err(DecodeError::Streamed { past: stream_past });
        }
        if out.len() as u64 > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        match read {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    match outcome {
        Ok(()) => Ok((out.len(), None)),
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
    fn a_reused_buffer_is_inflated_into_without_zeroing_and_its_old_bytes_are_not_read() {
        let first: String = (0..500).map(|i| format!("{{\"first\":{i}}}\n")).collect();
        let second = "{\"Records\":[]}";
        let mut scratch = Vec::new();
        assert!(inflate_whole(&gzip(first.as_bytes()), &mut scratch, first.len()));
        assert_eq!(scratch, first.as_bytes());
        // A shorter file next: libdeflate's path still takes it (the trailer's CRC is of its
        // own bytes, not of the longer buffer), and what is read is that file only.
        assert!(inflate_whole(&gzip(second.as_bytes()), &mut scratch, second.len()));
        assert_eq!(&scratch[..second.len()], second.as_bytes());
        assert_eq!(scratch.len(), first.len(), "kept, not zeroed");
        let packed = gzip(second.as_bytes());
        let d = decode(&packed, &mut scratch, 1 << 20).expect("gzip");
        assert_eq!(&*d.text, second);
        // A wrong size (a multi-member stream's trailer) is refused by the same path.
        assert!(!inflate_whole(&gzip(second.as_bytes()), &mut scratch, second.len() - 1));
    }

    #[test]
    fn the_same_member_twice_is_read_twice_and_bytes_after_a_member_are_reported() {
        let member = gzip(b"{\"a\":1}\n");
        let mut twice = member.clone();
        twice.extend(&member);
        // Its last trailer is the first member's own: libdeflate's path must not take the file.
        assert!(!inflate_whole(&twice, &mut Vec::new(), 8));
        let mut scratch = Vec::new();
        let d = decode(&twice, &mut scratch, 1 << 20).expect("twice");
        assert_eq!(d.text, "{\"a\":1}\n{\"a\":1}\n");
        assert!(d.damage.is_empty(), "{:?}", d.damage);
        // A member, bytes that are not gzip, then the member's trailer again.
        let mut tail = member.clone();
        tail.extend(b"not gzip");
        tail.extend(&member[member.len() - 8..]);
        let d = decode(&tail, &mut scratch, 1 << 20).expect("member and junk");
        assert_eq!(d.text, "{\"a\":1}\n");
        assert!(!d.damage.is_empty(), "the bytes after the member are reported");
        // One member alone still goes through libdeflate.
        assert!(inflate_whole(&member, &mut Vec::new(), 8));
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
    fn utf8_byte_order_mark_is_accepted_plain_and_gzip() {
        let text = b"\xef\xbb\xbf{\"Records\":[]}";
        let mut scratch = Vec::new();
        let d = decode(text, &mut scratch, 100).expect("plain");
        assert_eq!((&*d.text, d.damage.len()), ("{\"Records\":[]}", 0));
        let data = gzip(text);
        let d = decode(&data, &mut scratch, 100).expect("gzip");
        assert_eq!((&*d.text, d.damage.len()), ("{\"Records\":[]}", 0));
    }

    #[test]
    fn utf16_is_read_as_utf8() {
        let body = "{\"Records\":[{\"userAgent\":\"caf\u{e9} \u{1F600}\"}]}";
        let le: Vec<u8> = body.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = body.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let with_bom = |bom: &[u8], body: &[u8]| [bom, body].concat();
        for data in [
            with_bom(&[0xff, 0xfe], &le),
            with_bom(&[0xfe, 0xff], &be),
            le.clone(),
            be.clone(),
        ] {
            for data in [data.clone(), gzip(&data)] {
                let mut scratch = Vec::new();
                let d = decode(&data, &mut scratch, 1 << 20).expect("UTF-16");
                assert_eq!((&*d.text, d.bytes, d.damage.len()), (body, body.len() as u64, 0));
            }
        }
        // Converted, it must still fit the limit.
        assert_eq!(
            decode(&le, &mut Vec::new(), 20).map(|_| ()),
            Err(DecodeError::TooLarge { limit: 20 })
        );
    }

    #[test]
    fn utf16_in_pieces_split_anywhere_decodes_the_same() {
        let body = "{\"a\":\"x\u{1F600}y\u{e9}\"}";
        let le: Vec<u8> = body.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for size in 1..=le.len() {
            let (mut out, mut converter) = (Vec::new(), Utf16::new(false));
            for piece in le.chunks(size) {
                converter.push(piece, &mut out);
            }
            converter.finish(&mut out);
            assert_eq!(
                (String::from_utf8(out).as_deref(), converter.replaced),
                (Ok(body), false),
                "{size}"
            );
        }
        // An unpaired surrogate, and an odd byte at the end, are replaced.
        let (mut out, mut converter) = (Vec::new(), Utf16::new(false));
        converter.push(&[b'{', 0, 0x00, 0xd8, b'}', 0, b'x'], &mut out);
        converter.finish(&mut out);
        assert_eq!(
            (String::from_utf8(out).as_deref(), converter.replaced),
            (Ok("{\u{fffd}}\u{fffd}"), true)
        );
        let mut scratch = Vec::new();
        let d = decode(&[0xff, 0xfe, b'{', 0, 0x00, 0xdc, b'}', 0], &mut scratch, 100).expect("lossy");
        assert_eq!((&*d.text, &d.damage[..]), ("{\u{fffd}}", &[Damage::InvalidUtf16][..]));
    }

    #[test]
    fn max_file_size_near_u64_max_does_not_wrap() {
        // Two members: the trailer does not describe the whole stream, so it is inflated as a stream.
        let mut data = gzip(b"{\"a\":1}\n");
        data.extend(gzip(b"{\"b\":2}\n"));
        let mut scratch = Vec::new();
        for limit in [u64::MAX, u64::MAX - 1] {
            let d = decode(&data, &mut scratch, limit).expect("no limit to speak of");
            assert_eq!(d.text, "{\"a\":1}\n{\"b\":2}\n");
        }
        let one = gzip(b"{}");
        let d = decode(&one, &mut scratch, u64::MAX).expect("one member");
        assert_eq!(d.text, "{}");
    }

    #[test]
    fn gzip_size_field_is_not_trusted_for_the_buffer() {
        let mut data = gzip(b"{\"Records\":[]}");
        let at = data.len() - 4;
        data[at..].copy_from_slice(&(256u32 << 20).to_le_bytes());
        let mut scratch = Vec::new();
        let d = decode(&data, &mut scratch, 1 << 30).expect("what the stream holds");
        assert_eq!(d.text, "{\"Records\":[]}");
        assert!(
            scratch.capacity() < 1 << 20,
            "a 256 MB claim took {} bytes",
            scratch.capacity()
        );
    }

    #[test]
    fn invalid_utf8_is_repaired() {
        let mut scratch = Vec::new();
        let d = decode(b"{\"a\":\"\xff\xfe\"}", &mut scratch, 100).expect("lossy");
        assert_eq!(d.damage, [Damage::InvalidUtf8]);
        assert_eq!(d.text, "{\"a\":\"\u{fffd}\u{fffd}\"}");
    }
}
