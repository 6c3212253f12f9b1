//! Uploaded documents: account policy documents, a scenario's evaluator context, a counselor's
//! written call documentation and complaint texts to draft scenarios from.
//!
//! [`sniff`] decides what a file is from its bytes (a name can lie or be missing), then
//! [`extract_text`] turns it into normalised plain text; [`read_document`] does both. [`chunk`]
//! splits policy text into overlapping passages for retrieval and [`truncate_with_marker`] bounds
//! what is sent to an LLM.
//!
//! Uploads are hostile input, and a parser can fail in ways no Rust code can catch (a stack
//! overflow, an allocation failure): the service never calls [`read_document`] itself but runs it
//! in a child process with memory, CPU and time limits (`crate::sandbox`). Inside, the cheap
//! defences answer the common attacks precisely before they reach the limits: parsers run under
//! `catch_unwind`, DOCX parts are read through a size cap (zip bombs), PDFs pass [`pdf`]'s
//! pre-checks (nesting depth, inflated size, self-drawing XObjects), and every function refuses
//! inputs above [`crate::MAX_UPLOAD_BYTES`] even though the HTTP layer already limits bodies.

pub mod pdf;

use std::io::{self, BufReader, Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use quick_xml::events::Event;

use crate::MAX_UPLOAD_BYTES;

/// A DOCX's `word/document.xml` may inflate to at most this many bytes. Real documents' text
/// parts are a few MB at most; anything bigger is a zip bomb or not worth reading.
const MAX_DOCX_XML_BYTES: u64 = 50 * 1024 * 1024;

/// The DOCX part that holds the body text; its presence is what makes a zip a Word document.
const DOCX_BODY: &str = "word/document.xml";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The kinds of document the product accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    Pdf,
    Docx,
    Txt,
    Md,
}

impl DocKind {
    /// The lowercase name, as in file extensions and JSON: `pdf`, `docx`, `txt`, `md`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Pdf => "pdf",
            DocKind::Docx => "docx",
            DocKind::Txt => "txt",
            DocKind::Md => "md",
        }
    }

    /// The MIME type to serve a stored document with.
    pub fn mime(self) -> &'static str {
        match self {
            DocKind::Pdf => "application/pdf",
            DocKind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            DocKind::Txt => "text/plain; charset=utf-8",
            DocKind::Md => "text/markdown; charset=utf-8",
        }
    }

    /// The kind a file name's extension claims, if it names one of ours.
    fn from_file_name(name: &str) -> Option<DocKind> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "pdf" => Some(DocKind::Pdf),
            "docx" => Some(DocKind::Docx),
            "txt" | "text" => Some(DocKind::Txt),
            "md" | "markdown" => Some(DocKind::Md),
            _ => None,
        }
    }
}

/// Why an upload cannot be used. Messages are written for the person who uploaded the file.
/// Serializable: the extraction child sends it to the service.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum DocError {
    /// The content is none of the kinds allowed here; `allowed` lists them, e.g. `PDF, TXT`.
    #[error("unsupported file type; upload one of: {allowed}")]
    Unsupported { allowed: String },
    /// The file name claims one kind but the bytes are another (or nothing we know).
    #[error("the file is named as {claimed} but its content is {found}")]
    Mismatch { claimed: String, found: String },
    /// The file is the right kind but cannot be read: damaged, password-protected, a zip bomb,
    /// or it made the extraction process crash or exceed its limits.
    #[error("{0}")]
    Unreadable(String),
    /// The file holds no text we can extract.
    #[error(
        "the document contains no extractable text (a scanned PDF has no text layer; run OCR on it or upload the text)"
    )]
    Empty,
    /// Larger than [`crate::MAX_UPLOAD_BYTES`].
    #[error("the file is larger than {} MB", MAX_UPLOAD_BYTES / (1024 * 1024))]
    TooLarge,
    /// The extraction process could not be run at all (a deployment fault, not the file's).
    #[error("documents cannot be read right now ({0})")]
    Unavailable(String),
}

/// What the bytes look like, before the file name and the allowed list are considered.
enum Content {
    Pdf,
    Docx,
    Text,
    /// A zip without `word/document.xml` (e.g. an XLSX or a plain archive).
    OtherZip,
    /// Starts like a zip but the archive cannot be opened; carries the reason.
    BrokenZip(String),
    Binary,
}

impl Content {
    fn describe(&self) -> &'static str {
        match self {
            Content::Pdf => "a PDF",
            Content::Docx => "a Word (DOCX) document",
            Content::Text => "plain text",
            Content::OtherZip => "a ZIP archive that is not a Word document",
            Content::BrokenZip(_) => "a damaged ZIP archive",
            Content::Binary => "unrecognised binary data",
        }
    }
}

fn classify(bytes: &[u8]) -> Content {
    if bytes.starts_with(b"%PDF-") {
        return Content::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") {
        // Opening the archive only parses its central directory (bounded by the 10 MB input);
        // the zip reader runs under catch_unwind like every parser of uploaded bytes.
        let opened = catch_unwind(|| {
            zip::ZipArchive::new(Cursor::new(bytes)).map(|archive| archive.index_for_name(DOCX_BODY).is_some())
        });
        return match opened {
            Ok(Ok(true)) => Content::Docx,
            Ok(Ok(false)) => Content::OtherZip,
            Ok(Err(e)) => Content::BrokenZip(e.to_string()),
            Err(_) => Content::BrokenZip("the archive could not be parsed".into()),
        };
    }
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // NUL never occurs in real text files but is everywhere in binary formats (and UTF-16).
    if !text.contains(&0) && std::str::from_utf8(text).is_ok() { Content::Text } else { Content::Binary }
}

fn allowed_list(allowed: &[DocKind]) -> String {
    allowed.iter().map(|k| k.as_str().to_ascii_uppercase()).collect::<Vec<_>>().join(", ")
}

/// Decides what an upload is, by its bytes, never by its name alone.
///
/// `%PDF-` → [`DocKind::Pdf`]; a zip (`PK\x03\x04`) containing `word/document.xml` →
/// [`DocKind::Docx`]; otherwise valid UTF-8 (BOM allowed) without NUL bytes → [`DocKind::Txt`],
/// or [`DocKind::Md`] when the name ends `.md`/`.markdown`. A name whose extension
/// (`.pdf`, `.docx`, `.txt`/`.text`, `.md`/`.markdown`) contradicts the bytes →
/// [`DocError::Mismatch`]; other extensions claim nothing. A kind not in `allowed` (markdown is
/// not silently downgraded to text) → [`DocError::Unsupported`]. A zero-byte file →
/// [`DocError::Empty`]; over [`crate::MAX_UPLOAD_BYTES`] → [`DocError::TooLarge`].
pub fn sniff(file_name: Option<&str>, bytes: &[u8], allowed: &[DocKind]) -> Result<DocKind, DocError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(DocError::TooLarge);
    }
    if bytes.is_empty() {
        return Err(DocError::Empty);
    }
    let claimed = file_name.and_then(DocKind::from_file_name);
    let unsupported = || DocError::Unsupported { allowed: allowed_list(allowed) };
    let content = classify(bytes);
    let kind = match (&content, claimed) {
        (Content::Pdf, None | Some(DocKind::Pdf)) => DocKind::Pdf,
        (Content::Docx, None | Some(DocKind::Docx)) => DocKind::Docx,
        (Content::Text, Some(DocKind::Md)) => DocKind::Md,
        (Content::Text, None | Some(DocKind::Txt)) => DocKind::Txt,
        // A damaged Word file is still a Word file: tell the user it is damaged, not misnamed.
        (Content::BrokenZip(reason), Some(DocKind::Docx)) => {
            return Err(if allowed.contains(&DocKind::Docx) {
                DocError::Unreadable(format!("the Word document is damaged and cannot be opened ({reason})"))
            } else {
                unsupported()
            });
        }
        (_, Some(claimed)) => {
            return Err(DocError::Mismatch {
                claimed: claimed.as_str().to_ascii_uppercase(),
                found: content.describe().into(),
            });
        }
        (Content::OtherZip | Content::BrokenZip(_) | Content::Binary, None) => return Err(unsupported()),
    };
    if allowed.contains(&kind) { Ok(kind) } else { Err(unsupported()) }
}

/// Extracts normalised plain text from a document already identified by [`sniff`].
///
/// CPU-bound, and trusted with hostile bytes only inside the extraction child (see
/// [`read_document`]). PDFs pass [`pdf`]'s checks, then go through `pdf_extract`;
/// password-protected PDFs are refused. DOCX text comes from `word/document.xml`: each paragraph
/// is a line, `w:tab` is a tab, `w:br`/`w:cr` a line break; the part may inflate to at most 50 MB.
/// TXT and MD must be UTF-8 (a BOM is dropped).
///
/// The result is normalised: line endings become `\n`, control characters other than tab are
/// dropped, trailing whitespace on each line is removed, runs of more than two blank lines become
/// two, and the whole is trimmed. No text left → [`DocError::Empty`].
pub fn extract_text(kind: DocKind, bytes: &[u8]) -> Result<String, DocError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(DocError::TooLarge);
    }
    // Third-party parsers panic on hostile input (pdf-extract `unwrap`s freely); a panic is a
    // damaged file, answered like one. Nothing is shared with the closure but the input slice, so
    // observing a half-done state after a panic is impossible. (No log here: this runs in the
    // extraction child, whose standard output is the answer; the service logs the outcome.)
    let raw = catch_unwind(AssertUnwindSafe(|| match kind {
        DocKind::Pdf => extract_pdf(bytes),
        DocKind::Docx => extract_docx(bytes, MAX_DOCX_XML_BYTES),
        DocKind::Txt | DocKind::Md => extract_plain(bytes),
    }))
    .unwrap_or_else(|_| {
        Err(DocError::Unreadable(format!("the {} file is damaged and cannot be read", kind.as_str().to_uppercase())))
    })?;
    let text = normalise(&raw);
    if text.is_empty() { Err(DocError::Empty) } else { Ok(text) }
}

/// [`sniff`] then [`extract_text`]: what the extraction child runs on an upload. The service
/// calls `crate::sandbox::read_upload`, never this: a hostile file may crash the process that
/// parses it.
pub fn read_document(
    file_name: Option<&str>,
    bytes: &[u8],
    allowed: &[DocKind],
) -> Result<(DocKind, String), DocError> {
    let kind = sniff(file_name, bytes, allowed)?;
    Ok((kind, extract_text(kind, bytes)?))
}

fn extract_plain(bytes: &[u8]) -> Result<String, DocError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
        DocError::Unreadable("the text file is not valid UTF-8; save it as UTF-8 and upload it again".into())
    })
}

fn extract_pdf(bytes: &[u8]) -> Result<String, DocError> {
    pdf::check_bytes(bytes)?;
    let doc = pdf_extract::Document::load_mem(bytes)
        .map_err(|e| DocError::Unreadable(format!("the PDF is damaged and cannot be read ({e})")))?;
    // Loading already decrypts files protected only by an owner password (empty user password);
    // still encrypted means a password is needed to open it.
    if doc.is_encrypted() {
        return Err(DocError::Unreadable(
            "the PDF is password-protected; remove the password and upload it again".into(),
        ));
    }
    pdf::check_drawings(&doc)?;
    let mut text = String::new();
    pdf_extract::output_doc(&doc, &mut pdf_extract::PlainTextOutput::new(&mut text))
        .map_err(|e| DocError::Unreadable(format!("the PDF's text cannot be read ({e})")))?;
    Ok(text)
}

fn docx_too_large() -> DocError {
    DocError::Unreadable(format!(
        "the Word document's text part is larger than {} MB uncompressed; it cannot be read",
        MAX_DOCX_XML_BYTES / (1024 * 1024)
    ))
}

/// Reads `word/document.xml` through a cap of `cap` inflated bytes. The cap is checked twice: the
/// size the archive declares (honest bombs fail before anything is inflated) and the bytes
/// actually inflated (a lying header fails once the cap is crossed); the XML is parsed as a stream,
/// so at most `cap` bytes are ever inflated.
fn extract_docx(bytes: &[u8], cap: u64) -> Result<String, DocError> {
    let damaged = |e: &dyn std::fmt::Display| DocError::Unreadable(format!("the Word document is damaged ({e})"));
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| damaged(&e))?;
    let part = archive.by_name(DOCX_BODY).map_err(|e| damaged(&e))?;
    if part.size() > cap {
        return Err(docx_too_large());
    }
    let mut xml =
        quick_xml::Reader::from_reader(BufReader::new(Capped { inner: part, remaining: cap, exceeded: false }));
    let mut buf = Vec::new();
    let mut text = String::new();
    let mut in_text = false; // inside w:t
    let mut in_tab_stops = 0usize; // inside w:tabs, whose w:tab children are tab stops, not tabs
    let mut in_fallback = 0usize; // inside mc:Fallback, which repeats the mc:Choice content
    loop {
        let event = match xml.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(_) if xml.get_ref().get_ref().exceeded => return Err(docx_too_large()),
            Err(e) => return Err(damaged(&e)),
        };
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "Fallback" => in_fallback += 1,
                _ if in_fallback > 0 => {}
                "t" => in_text = true,
                "tabs" => in_tab_stops += 1,
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "Fallback" => in_fallback = in_fallback.saturating_sub(1),
                _ if in_fallback > 0 => {}
                "t" => in_text = false,
                "tabs" => in_tab_stops = in_tab_stops.saturating_sub(1),
                "p" => text.push('\n'),
                _ => {}
            },
            Event::Empty(e) if in_fallback == 0 => match e.local_name().as_ref() {
                "p" | "br" | "cr" => text.push('\n'),
                "tab" if in_tab_stops == 0 => text.push('\t'),
                _ => {}
            },
            Event::Text(t) if in_text && in_fallback == 0 => text.push_str(&t.xml10_content()),
            // `&amp;`, `&#233;`: the reader reports references apart from the text around them.
            Event::GeneralRef(r) if in_text && in_fallback == 0 => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                _ => match quick_xml::escape::resolve_predefined_entity(&r) {
                    Some(s) => text.push_str(s),
                    // An entity we do not know: keep it as written rather than lose it.
                    None => text.push_str(&format!("&{};", &*r)),
                },
            },
            Event::CData(t) if in_text && in_fallback == 0 => text.push_str(&t.xml10_content()),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(text)
}

/// A reader that fails once more than `remaining` bytes would be read, and remembers why, so a
/// zip bomb is told apart from a damaged archive.
struct Capped<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // At the cap: fine if the part ends exactly here, a bomb if there is more.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The normalisation described on [`extract_text`].
fn normalise(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0usize;
    // \r\n, lone \r (old Mac), form feed and vertical tab (PDF page breaks), and Unicode line and
    // paragraph separators all end a line.
    for line in raw.replace("\r\n", "\n").split(['\n', '\r', '\x0B', '\x0C', '\u{2028}', '\u{2029}']) {
        let line: String = line.chars().filter(|&c| c == '\t' || !c.is_control()).collect();
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 2 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// One passage of a document: the `index`-th chunk, starting `start` characters (not bytes) into
/// the text that was chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub start: usize,
    pub text: String,
}

/// Splits `text` into chunks of at most `max_chars` characters for retrieval of policy passages.
///
/// Counts characters, never bytes, and never splits inside a character. A chunk ends at the
/// latest paragraph break (blank line) in the second half of its window, else the latest sentence
/// or line end, else the latest space, else it is cut hard at `max_chars`. The next chunk starts
/// up to `overlap` characters before the previous one ended (moved forward to a word start, so the
/// carried text does not begin mid-word), so a passage cut at a boundary is still whole in one
/// chunk. `overlap` is capped at a quarter of `max_chars` so every chunk moves forward, and a
/// `max_chars` of 0 counts as 1. Chunks carry no leading or trailing whitespace: for every chunk,
/// `text.chars().skip(start).take(chunk.text.chars().count())` is `chunk.text`. Text that is empty
/// or all whitespace gives no chunks.
pub fn chunk(text: &str, max_chars: usize, overlap: usize) -> Vec<Chunk> {
    let max_chars = max_chars.max(1);
    let overlap = overlap.min(max_chars / 4);
    let chars: Vec<char> = text.chars().collect();
    // Byte offset of every character and of the end, so character ranges slice `text` directly.
    let bytes_at: Vec<usize> = text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect();
    let n = chars.len();
    let skip_space = |mut i: usize| {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut chunks = Vec::new();
    let mut start = skip_space(0);
    while start < n {
        let end = if n - start <= max_chars { n } else { break_point(&chars, start, start + max_chars, max_chars) };
        let mut text_end = end;
        while text_end > start && chars[text_end - 1].is_whitespace() {
            text_end -= 1;
        }
        chunks.push(Chunk { index: chunks.len(), start, text: text[bytes_at[start]..bytes_at[text_end]].to_owned() });
        if chars[end..].iter().all(|c| c.is_whitespace()) {
            break;
        }
        start = skip_space(overlap_start(&chars, end, overlap)).max(start + 1);
    }
    chunks
}

/// Where to end a chunk that starts at `start` and may not reach past `limit` (< text length):
/// the best-ranked boundary in the window's second half, the latest among equals.
fn break_point(chars: &[char], start: usize, limit: usize, max_chars: usize) -> usize {
    let lowest = start + (max_chars / 2).max(1);
    let mut best = (0u8, limit);
    for e in (lowest..=limit).rev() {
        let rank = boundary_rank(chars, e);
        if rank > best.0 {
            best = (rank, e);
            if rank == 3 {
                break;
            }
        }
    }
    best.1
}

/// How good a place cutting before `chars[e]` is: 3 paragraph break, 2 sentence or line end,
/// 1 between words, 0 inside a word.
fn boundary_rank(chars: &[char], e: usize) -> u8 {
    let (Some(&here), Some(&before)) = (chars.get(e), e.checked_sub(1).and_then(|i| chars.get(i))) else {
        return 0;
    };
    // Some scripts end sentences without a following space.
    if matches!(before, '。' | '！' | '？') {
        return 2;
    }
    if !here.is_whitespace() {
        return 0;
    }
    if here == '\n' && (before == '\n' || chars.get(e + 1) == Some(&'\n')) {
        return 3;
    }
    // A closing quote or bracket may follow the sentence's end mark.
    let mark = if matches!(before, '"' | '\'' | '”' | '’' | ')' | '»') && e >= 2 { chars[e - 2] } else { before };
    if here == '\n' || matches!(mark, '.' | '!' | '?' | '…') {
        return 2;
    }
    1
}

/// Where the chunk after one ending at `end` starts: `overlap` characters back, moved forward to
/// the first word start in the carried span (if there is none, the carried text starts mid-word).
fn overlap_start(chars: &[char], end: usize, overlap: usize) -> usize {
    let from = end - overlap;
    (from..end).find(|&p| !chars[p].is_whitespace() && (p == 0 || chars[p - 1].is_whitespace())).unwrap_or(from)
}

/// Cuts `text` to at most `max_chars` characters, marking the cut; returns whether it cut.
///
/// The result never exceeds `max_chars`: when cutting, the kept text plus a final line
/// `[… truncated: N of M characters shown …]` (N kept, M in the original) fit within the limit,
/// so callers can budget an LLM prompt by it. The cut prefers a line break or space near the end
/// of the kept part. If `max_chars` is too small to hold the marker, the text is cut hard
/// without one.
pub fn truncate_with_marker(text: &str, max_chars: usize) -> (String, bool) {
    let total = text.chars().count();
    if total <= max_chars {
        return (text.to_owned(), false);
    }
    let marker = |kept: usize| format!("\n[… truncated: {kept} of {total} characters shown …]");
    // The kept count is at most max_chars, so the marker for max_chars is the longest it can be.
    let room = max_chars.saturating_sub(marker(max_chars).chars().count());
    if room == 0 {
        return (text.chars().take(max_chars).collect(), true);
    }
    let byte_at = |chars: usize| text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i);
    let hard = &text[..byte_at(room)];
    // Back up to a line break, else a space, within the last tenth (max 200 characters).
    let window_start = byte_at(room - (room / 10).min(200));
    let tail = &hard[window_start..];
    let soft = tail.rfind('\n').or_else(|| tail.rfind(' ')).map(|i| &hard[..window_start + i]);
    let kept = soft.filter(|s| !s.trim().is_empty()).unwrap_or(hard).trim_end();
    let shown = kept.chars().count();
    (format!("{kept}{}", marker(shown)), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits least-significant first, as DEFLATE does.
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }

    impl Bits {
        fn put(&mut self, value: u32, bits: u32) {
            self.acc |= u64::from(value) << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }

        /// Huffman codes are defined most-significant bit first.
        fn put_code(&mut self, code: u32, bits: u32) {
            self.put(code.reverse_bits() >> (32 - bits), bits);
        }

        /// A literal/length symbol of the fixed Huffman code (RFC 1951, 3.2.6).
        fn put_symbol(&mut self, symbol: u32) {
            match symbol {
                0..=143 => self.put_code(0x30 + symbol, 8),
                144..=255 => self.put_code(0x190 + symbol - 144, 9),
                256..=279 => self.put_code(symbol - 256, 7),
                _ => self.put_code(0xC0 + symbol - 280, 8),
            }
        }
    }

    /// A DEFLATE stream of `prefix`, `fill` repeated `count` times and `suffix`, written by hand so
    /// a huge part costs a few hundred KB and no compression time: the repeats are matches of
    /// length 258 at distance 1, 13 bits each.
    fn deflate_bomb(prefix: &[u8], fill: u8, count: usize, suffix: &[u8]) -> Vec<u8> {
        let mut bits = Bits { out: Vec::new(), acc: 0, len: 0 };
        bits.put(1, 1); // final block
        bits.put(1, 2); // fixed Huffman codes
        for &b in prefix {
            bits.put_symbol(u32::from(b));
        }
        bits.put_symbol(u32::from(fill));
        let mut left = count - 1;
        while left >= 258 {
            bits.put_symbol(285); // length 258, no extra bits
            bits.put_code(0, 5); // distance 1
            left -= 258;
        }
        for &b in std::iter::repeat_n(&fill, left).chain(suffix) {
            bits.put_symbol(u32::from(b));
        }
        bits.put_symbol(256);
        bits.put(0, 7); // flush the last byte
        bits.out
    }

    /// A one-entry zip of already-deflated data, declaring `size` as the inflated size; the CRC is
    /// left 0 because the reader refuses these parts before reaching the end where it is checked.
    fn zip_raw(name: &str, deflated: &[u8], size: u32) -> Vec<u8> {
        let le16 = |v: u16| v.to_le_bytes();
        let le32 = |v: u32| v.to_le_bytes();
        let compressed = u32::try_from(deflated.len()).expect("fits");
        let name_len = u16::try_from(name.len()).expect("fits");
        let mut out = Vec::new();
        out.extend(le32(0x0403_4b50));
        for v in [20, 0, 8, 0, 0x21] {
            out.extend(le16(v)); // version, flags, method deflate, time, date
        }
        for v in [0, compressed, size] {
            out.extend(le32(v)); // crc, sizes
        }
        out.extend(le16(name_len));
        out.extend(le16(0));
        out.extend(name.as_bytes());
        out.extend(deflated);
        let directory = u32::try_from(out.len()).expect("fits");
        out.extend(le32(0x0201_4b50));
        for v in [20, 20, 0, 8, 0, 0x21] {
            out.extend(le16(v)); // made by, needed, flags, method, time, date
        }
        for v in [0, compressed, size] {
            out.extend(le32(v));
        }
        for v in [name_len, 0, 0, 0, 0] {
            out.extend(le16(v)); // name, extra, comment, disk, internal attributes
        }
        out.extend(le32(0)); // external attributes
        out.extend(le32(0)); // local header offset
        out.extend(name.as_bytes());
        let directory_len = u32::try_from(out.len()).expect("fits") - directory;
        out.extend(le32(0x0605_4b50));
        for v in [0, 0, 1, 1] {
            out.extend(le16(v));
        }
        out.extend(le32(directory_len));
        out.extend(le32(directory));
        out.extend(le16(0));
        out
    }

    const PREFIX: &[u8] = b"<w:document><w:body><w:p><w:r><w:t>";
    const SUFFIX: &[u8] = b"</w:t></w:r></w:p></w:body></w:document>";
    const BOMB_SPACES: usize = 60 * 1024 * 1024;

    fn bomb(declared: u32) -> Vec<u8> {
        zip_raw(DOCX_BODY, &deflate_bomb(PREFIX, b' ', BOMB_SPACES, SUFFIX), declared)
    }

    #[test]
    fn the_hand_made_bomb_inflates_to_what_it_claims() {
        let bytes = bomb(1000);
        assert!(bytes.len() < 500 * 1024, "{} bytes", bytes.len());
        let mut archive = zip::ZipArchive::new(Cursor::new(&bytes)).expect("zip");
        let mut head = vec![0; 64 * 1024];
        archive.by_name(DOCX_BODY).expect("part").read_exact(&mut head).expect("inflates");
        assert!(head.starts_with(PREFIX));
        assert!(head[PREFIX.len()..].iter().all(|&b| b == b' '));
    }

    #[test]
    fn a_bomb_that_declares_its_size_is_refused_before_inflating() {
        let declared = u32::try_from(PREFIX.len() + BOMB_SPACES + SUFFIX.len()).expect("fits");
        let bytes = bomb(declared);
        assert_eq!(sniff(Some("bomb.docx"), &bytes, &[DocKind::Docx]).expect("a docx"), DocKind::Docx);
        let err = extract_text(DocKind::Docx, &bytes).expect_err("refused");
        assert!(matches!(&err, DocError::Unreadable(m) if m.contains("larger than 50 MB")), "{err:?}");
    }

    #[test]
    fn a_bomb_that_lies_about_its_size_is_refused_at_the_cap() {
        // Inflating to the real 50 MB cap takes too long unoptimised; the cap is a parameter.
        let err = extract_docx(&bomb(1000), 1024 * 1024).expect_err("refused");
        assert!(matches!(&err, DocError::Unreadable(m) if m.contains("larger than")), "{err:?}");
    }

    #[test]
    fn a_part_exactly_at_the_cap_is_read() {
        let xml = b"<w:document><w:body><w:p><w:r><w:t>fits</w:t></w:r></w:p></w:body></w:document>";
        let deflated = deflate_bomb(&xml[..xml.len() - 1], xml[xml.len() - 1], 1, b"");
        let bytes = zip_raw(DOCX_BODY, &deflated, 0);
        // The CRC of 0 is wrong, so reading to the end fails as damaged; what matters is that
        // exactly `cap` bytes are not mistaken for a bomb.
        let err = extract_docx(&bytes, xml.len() as u64).expect_err("bad crc");
        assert!(matches!(&err, DocError::Unreadable(m) if m.contains("damaged")), "{err:?}");
    }

    #[test]
    fn normalise_line_endings_blank_lines_and_control_characters() {
        let raw = "  a  \r\nb\rc\x0Cd\u{0}e\n\n\n\n\n\nf\t \n\n";
        assert_eq!(normalise(raw), "a\nb\nc\nde\n\n\nf");
    }
}
