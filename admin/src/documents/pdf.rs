//! What a PDF must pass before `pdf_extract` reads it, so the common attacks answer a precise
//! refusal in milliseconds instead of exhausting the extraction process's limits.
//!
//! - [`check_bytes`], on the raw file before any PDF library parses it: arrays and dictionaries
//!   nested at most [`MAX_NESTING`] deep (the parsers recurse once per level; ~3,000 levels
//!   overflowed the stack of lopdf < 0.42, RUSTSEC-2026-0187), at most [`MAX_STREAMS`] streams,
//!   and all Flate data together inflating to at most [`MAX_INFLATED_BYTES`] (lopdf inflates
//!   object streams while loading and pdf-extract every stream it draws, both without a cap).
//! - [`check_drawings`], on the loaded document: the page tree's `Parent` chains end, and every
//!   XObject a page draws (`Do`), followed the way pdf-extract follows it, neither draws itself
//!   (pdf-extract recurses into it without a guard) nor nests deeper than [`MAX_DRAWING_DEPTH`] nor
//!   multiplies into more than [`MAX_DRAWINGS`] drawings.
//!
//! These checks are the fast path, not the boundary: everything still runs in the sandboxed child
//! process (`crate::sandbox`), whose memory, CPU and wall-time limits stop what they miss
//! (LZW or twice-compressed bombs, encrypted streams, a parser bug).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use pdf_extract::content::Content;
use pdf_extract::{Dictionary, Document, Object, ObjectId};

use super::DocError;

/// Arrays and dictionaries nested deeper than this are refused. Real documents stay under ten;
/// lopdf itself stops at 100.
pub const MAX_NESTING: usize = 64;

/// All Flate streams of a PDF together may inflate to at most this many bytes. Text extraction
/// never needs more: a 10 MB upload of text and vector drawings inflates to a few tens of MB.
pub const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

/// Form XObjects drawn inside form XObjects, at most this deep.
pub const MAX_DRAWING_DEPTH: usize = 32;

/// XObject drawings (`Do`) in the whole document, nested ones counted each time they are drawn.
pub const MAX_DRAWINGS: usize = 10_000;

/// `Parent` links followed from a page, at most (lopdf's own page-tree limit is 256).
const MAX_PARENTS: usize = 256;

fn refuse(why: &str) -> DocError {
    DocError::Unreadable(format!("the PDF {why}; it cannot be read safely"))
}

/// The checks on the raw bytes, before any parser sees them.
pub fn check_bytes(bytes: &[u8]) -> Result<(), DocError> {
    if nesting_exceeds(bytes, MAX_NESTING) {
        return Err(refuse(&format!("nests arrays or dictionaries more than {MAX_NESTING} levels deep")));
    }
    match inflated_size_exceeds(bytes, MAX_INFLATED_BYTES) {
        Ok(false) => {}
        Ok(true) => {
            return Err(refuse(&format!(
                "holds compressed data that inflates to more than {} MB",
                MAX_INFLATED_BYTES / (1024 * 1024)
            )));
        }
        Err(TooManyStreams) => return Err(refuse(&format!("has more than {MAX_STREAMS} streams"))),
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_delimiter_or_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%\0".contains(&b)
}

/// Whether a `stream` keyword starts at `i`: after a delimiter (not the tail of `endstream`) and
/// followed by an end of line, as the PDF syntax (and lopdf) require.
fn stream_keyword_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes[i..].starts_with(b"stream") || (i > 0 && !is_delimiter_or_space(bytes[i - 1])) {
        return None;
    }
    let mut data = i + b"stream".len();
    while bytes.get(data) == Some(&b' ') {
        data += 1;
    }
    match (bytes.get(data), bytes.get(data + 1)) {
        (Some(b'\r'), Some(b'\n')) => Some(data + 2),
        (Some(b'\r' | b'\n'), _) => Some(data + 1),
        _ => None,
    }
}

/// Whether arrays (`[`) and dictionaries (`<<`) nest deeper than `max` anywhere in the file's
/// object syntax. Strings, comments and stream data are skipped (a stream runs to the next
/// `endstream`), so brackets inside them do not count. Linear in the input.
fn nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                // A literal string: balanced parentheses inside, backslash escapes any byte.
                let mut open = 0usize;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'(' => open += 1,
                        b')' => {
                            open -= 1;
                            if open == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b'<' => {
                // A hex string.
                while i < bytes.len() && bytes[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b's' => {
                if let Some(data) = stream_keyword_at(bytes, i) {
                    match find(&bytes[data..], b"endstream") {
                        Some(end) => i = data + end + b"endstream".len() - 1,
                        None => return false,
                    }
                }
            }
            _ => {}
        }
        if depth > max {
            return true;
        }
        i += 1;
    }
    false
}

/// Streams in one PDF, at most: each costs a decoder's set-up in the inflation check, and real
/// documents, even of thousands of pages, have far fewer.
pub const MAX_STREAMS: usize = 50_000;

/// Reads `reader` to its end or until more than `budget` bytes came out, through `buf`, keeping
/// none of them; returns how many came out.
fn drain(mut reader: impl Read, budget: u64, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    loop {
        match reader.read(buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => {
                total += n as u64;
                if total > budget {
                    return total;
                }
            }
        }
    }
}

/// Whether the Flate data after every `stream` keyword, inflated the way lopdf inflates it (zlib,
/// else raw deflate after the two header bytes when zlib gave nothing), adds up to more than
/// `cap` bytes. Deflate data ends itself, so each stream is inflated from its first byte without
/// trusting `/Length` or `endstream`; data that is not Flate fails within a few bytes. Nothing is
/// kept, and the work is bounded by `cap` plus the input size per stream.
fn inflated_size_exceeds(bytes: &[u8], cap: u64) -> Result<bool, TooManyStreams> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut streams) = (0u64, 0usize);
    let mut from = 0;
    while let Some(found) = find(&bytes[from..], b"stream") {
        let at = from + found;
        from = at + 1;
        let Some(data) = stream_keyword_at(bytes, at) else { continue };
        streams += 1;
        if streams > MAX_STREAMS {
            return Err(TooManyStreams);
        }
        let input = &bytes[data..];
        let budget = cap - total;
        let mut out = drain(flate2::bufread::ZlibDecoder::new(input), budget, &mut buf);
        if out == 0 && input.len() > 2 {
            out = drain(flate2::bufread::DeflateDecoder::new(&input[2..]), budget, &mut buf);
        }
        total += out;
        if total > cap {
            return Ok(true);
        }
    }
    Ok(false)
}

/// More than [`MAX_STREAMS`] stream keywords.
#[derive(Debug)]
struct TooManyStreams;

/// The checks on the loaded document, before text extraction: page-tree loops and XObject
/// drawings that draw themselves, nest too deep or multiply.
pub fn check_drawings(doc: &Document) -> Result<(), DocError> {
    let mut walk = Walk { doc, draws: 0, stack: Vec::new(), names: HashMap::new() };
    for page_id in doc.get_pages().into_values() {
        let Ok(page) = doc.get_dictionary(page_id) else { continue };
        let resources = page_resources(doc, page)?;
        let content = doc.get_page_content(page_id).unwrap_or_default();
        for name in drawn_names(&content) {
            walk.draw(&name, resources)?;
        }
    }
    Ok(())
}

fn deref<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    doc.dereference(object).ok().map(|(_, o)| o)
}

fn dict_entry<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    dict.get(key).ok().and_then(|o| deref(doc, o)).and_then(|o| o.as_dict().ok())
}

/// A page's `Resources`, its own or inherited through `Parent` links, as pdf-extract looks them
/// up (recursively, without a guard: a `Parent` loop would never end).
fn page_resources<'a>(doc: &'a Document, page: &'a Dictionary) -> Result<Option<&'a Dictionary>, DocError> {
    let mut seen = HashSet::new();
    let mut node = page;
    loop {
        if let Some(resources) = dict_entry(doc, node, b"Resources") {
            return Ok(Some(resources));
        }
        let Some(parent) = node.get(b"Parent").ok().and_then(|p| p.as_reference().ok()) else { return Ok(None) };
        if !seen.insert(parent) || seen.len() > MAX_PARENTS {
            return Err(refuse("has a page tree that loops back on itself"));
        }
        let Ok(next) = doc.get_dictionary(parent) else { return Ok(None) };
        node = next;
    }
}

/// The XObject names a content stream draws (`/Name Do`); none if it does not parse.
fn drawn_names(content: &[u8]) -> Vec<Vec<u8>> {
    let Ok(content) = Content::decode(content) else { return Vec::new() };
    content
        .operations
        .into_iter()
        .filter(|op| op.operator == "Do")
        .filter_map(|op| op.operands.first().and_then(|o| o.as_name().ok()).map(<[u8]>::to_vec))
        .collect()
}

/// A depth-first walk of what the pages draw, mirroring pdf-extract's `Do`: the XObject named in
/// the current resources, drawn with its own resources or else the caller's. Recursion is bounded
/// by [`MAX_DRAWING_DEPTH`], the whole walk by [`MAX_DRAWINGS`].
struct Walk<'a> {
    doc: &'a Document,
    draws: usize,
    /// The XObjects being drawn, outermost first.
    stack: Vec<ObjectId>,
    /// Each XObject's drawn names, decoded once.
    names: HashMap<ObjectId, Vec<Vec<u8>>>,
}

impl<'a> Walk<'a> {
    fn draw(&mut self, name: &[u8], resources: Option<&'a Dictionary>) -> Result<(), DocError> {
        self.draws += 1;
        if self.draws > MAX_DRAWINGS {
            return Err(refuse(&format!("draws nested drawings (XObjects) more than {MAX_DRAWINGS} times")));
        }
        let doc = self.doc;
        let Some(xobjects) = resources.and_then(|r| dict_entry(doc, r, b"XObject")) else { return Ok(()) };
        let Some(Ok((Some(id), Object::Stream(stream)))) = xobjects.get(name).ok().map(|o| doc.dereference(o)) else {
            return Ok(());
        };
        if self.stack.contains(&id) {
            return Err(refuse("contains a drawing (Form XObject) that draws itself"));
        }
        if self.stack.len() >= MAX_DRAWING_DEPTH {
            return Err(refuse(&format!("nests drawings (Form XObjects) more than {MAX_DRAWING_DEPTH} levels deep")));
        }
        let inner = dict_entry(doc, &stream.dict, b"Resources").or(resources);
        let names = self
            .names
            .entry(id)
            .or_insert_with(|| drawn_names(&stream.decompressed_content().unwrap_or_else(|_| stream.content.clone())))
            .clone();
        self.stack.push(id);
        for name in names {
            self.draw(&name, inner)?;
        }
        self.stack.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_arrays_and_dictionaries_but_not_strings_comments_or_streams() {
        assert!(!nesting_exceeds(b"<< /A [[[1]]] >>", 4));
        assert!(nesting_exceeds(b"<< /A [[[[1]]]] >>", 4));
        assert!(!nesting_exceeds(b"<< /A (((((((((((( [[[[[[ \\) ) >>", 2));
        assert!(!nesting_exceeds(b"% [[[[[[[[[[\n[1]", 2));
        assert!(!nesting_exceeds(b"<< /Length 10 >>\nstream\n[[[[[[[[[[\nendstream [1]", 2));
        assert!(!nesting_exceeds(b"<5b5b5b5b5b> [<<>>]", 2));
        let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
        assert!(nesting_exceeds(deep.as_bytes(), MAX_NESTING));
    }

    #[test]
    fn inflated_size_counts_zlib_and_raw_deflate_streams() {
        use std::io::Write;
        let zeros = vec![0u8; 100_000];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&zeros).expect("deflate");
        let zlib = z.finish().expect("finish");
        let mut pdf = b"1 0 obj << /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend(&zlib);
        pdf.extend(b"\nendstream endobj 2 0 obj << >>\r\nstream\r\nnot deflate\nendstream");
        assert!(!inflated_size_exceeds(&pdf, 100_000).expect("few streams"));
        assert!(inflated_size_exceeds(&pdf, 99_999).expect("few streams"));
        // Raw deflate after two junk header bytes, as lopdf's fallback reads it.
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        d.write_all(&zeros).expect("deflate");
        let mut raw = b"<< >> stream\nxx".to_vec();
        raw.extend(d.finish().expect("finish"));
        assert!(inflated_size_exceeds(&raw, 99_999).expect("one stream"));
        // `endstream` is not a `stream` keyword.
        assert!(!inflated_size_exceeds(b"endstream\n", 0).expect("no stream"));
        // Each stream keyword costs a decoder: too many are refused before they add up.
        let many = b" stream\n".repeat(MAX_STREAMS + 1);
        assert!(inflated_size_exceeds(&many, u64::MAX).is_err());
    }
}
