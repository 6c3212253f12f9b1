//! The document pipeline on generated files: kind detection, text extraction, chunking and
//! truncation. Fixtures are built in code (no binary files in the repository).

use std::io::{Cursor, Write};

use admin::documents::{Chunk, DocError, DocKind, chunk, extract_text, sniff, truncate_with_marker};

const ALL: &[DocKind] = &[DocKind::Pdf, DocKind::Docx, DocKind::Txt, DocKind::Md];

use crate::common::pdf as fixtures;

use fixtures::{pdf, pdf_with_text};

/// A zip holding `files`, deflated.
fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer.start_file(*name, options).expect("start");
        writer.write_all(content.as_bytes()).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

/// A DOCX whose body is `body` (WordprocessingML paragraphs).
fn docx(body: &str) -> Vec<u8> {
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>{body}</w:body></w:document>"#
    );
    zip(&[("[Content_Types].xml", types), ("word/document.xml", &document)])
}

// --- sniff ---

#[test]
fn sniff_pdf_by_magic_bytes_whatever_the_name() {
    let bytes = pdf_with_text("hello");
    assert_eq!(sniff(Some("policy.pdf"), &bytes, ALL).expect("pdf"), DocKind::Pdf);
    assert_eq!(sniff(Some("policy"), &bytes, ALL).expect("pdf"), DocKind::Pdf);
    assert_eq!(sniff(None, &bytes, ALL).expect("pdf"), DocKind::Pdf);
    assert_eq!(sniff(Some("POLICY.PDF"), &bytes, ALL).expect("pdf"), DocKind::Pdf);
}

#[test]
fn sniff_docx_by_zip_with_document_xml() {
    let bytes = docx("<w:p><w:r><w:t>hi</w:t></w:r></w:p>");
    assert_eq!(sniff(Some("policy.docx"), &bytes, ALL).expect("docx"), DocKind::Docx);
    assert_eq!(sniff(None, &bytes, ALL).expect("docx"), DocKind::Docx);
}

#[test]
fn a_zip_without_document_xml_is_unsupported() {
    let bytes = zip(&[("xl/workbook.xml", "<workbook/>")]);
    assert!(matches!(sniff(None, &bytes, ALL), Err(DocError::Unsupported { .. })));
    assert!(matches!(sniff(Some("book.xlsx"), &bytes, ALL), Err(DocError::Unsupported { .. })));
    // Named as a Word document, it is a mismatch.
    assert!(matches!(sniff(Some("fake.docx"), &bytes, ALL), Err(DocError::Mismatch { .. })));
}

#[test]
fn a_name_contradicting_the_bytes_is_a_mismatch() {
    let err = sniff(Some("x.pdf"), b"just some text", ALL).expect_err("mismatch");
    assert!(matches!(&err, DocError::Mismatch { claimed, found } if claimed == "PDF" && found == "plain text"));
    assert_eq!(err.to_string(), "the file is named as PDF but its content is plain text");
    let err = sniff(Some("notes.txt"), &pdf_with_text("hi"), ALL).expect_err("mismatch");
    assert!(matches!(err, DocError::Mismatch { .. }));
    let err = sniff(Some("policy.docx"), &pdf_with_text("hi"), ALL).expect_err("mismatch");
    assert!(matches!(err, DocError::Mismatch { .. }));
}

#[test]
fn binary_garbage_is_unsupported_and_the_message_lists_allowed_kinds() {
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let err = sniff(None, &garbage, &[DocKind::Pdf, DocKind::Txt]).expect_err("garbage");
    assert!(matches!(&err, DocError::Unsupported { allowed } if allowed == "PDF, TXT"));
    assert_eq!(err.to_string(), "unsupported file type; upload one of: PDF, TXT");
    // Legacy .doc (an OLE compound file) claims nothing we read.
    let ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0";
    assert!(matches!(sniff(Some("old.doc"), ole, ALL), Err(DocError::Unsupported { .. })));
    // Invalid UTF-8 and UTF-16 (NUL bytes) are not text.
    assert!(matches!(sniff(None, b"caf\xE9", ALL), Err(DocError::Unsupported { .. })));
    assert!(matches!(sniff(None, b"h\0i\0", ALL), Err(DocError::Unsupported { .. })));
}

#[test]
fn sniff_respects_the_allowed_list() {
    let complaint = &[DocKind::Pdf, DocKind::Txt];
    let bytes = docx("<w:p><w:r><w:t>hi</w:t></w:r></w:p>");
    assert!(matches!(sniff(Some("c.docx"), &bytes, complaint), Err(DocError::Unsupported { .. })));
    assert!(matches!(sniff(Some("c.md"), b"# hi", complaint), Err(DocError::Unsupported { .. })));
    assert!(matches!(sniff(None, &pdf_with_text("hi"), &[DocKind::Txt]), Err(DocError::Unsupported { .. })));
    assert_eq!(sniff(Some("c.txt"), b"hi", complaint).expect("txt"), DocKind::Txt);
}

#[test]
fn sniff_text_with_bom_and_markdown_by_name() {
    assert_eq!(sniff(Some("a.txt"), "\u{FEFF}Grüße".as_bytes(), ALL).expect("txt"), DocKind::Txt);
    assert_eq!(sniff(None, b"plain", ALL).expect("txt"), DocKind::Txt);
    assert_eq!(sniff(Some("notes.csv"), b"a,b", ALL).expect("txt"), DocKind::Txt);
    assert_eq!(sniff(Some("policy.md"), b"# Policy", ALL).expect("md"), DocKind::Md);
    assert_eq!(sniff(Some("policy.Markdown"), b"# Policy", ALL).expect("md"), DocKind::Md);
}

#[test]
fn sniff_refuses_empty_and_oversized_files() {
    assert!(matches!(sniff(Some("a.txt"), b"", ALL), Err(DocError::Empty)));
    let big = vec![b'a'; admin::MAX_UPLOAD_BYTES + 1];
    assert!(matches!(sniff(Some("a.txt"), &big, ALL), Err(DocError::TooLarge)));
    assert!(matches!(extract_text(DocKind::Txt, &big), Err(DocError::TooLarge)));
}

#[test]
fn kinds_have_names_and_mime_types() {
    assert_eq!(DocKind::Docx.as_str(), "docx");
    assert_eq!(DocKind::Pdf.mime(), "application/pdf");
    assert_eq!(serde_json::to_string(&DocKind::Md).expect("json"), r#""md""#);
}

// --- extract ---

#[test]
fn pdf_text_round_trips() {
    let text = extract_text(DocKind::Pdf, &pdf_with_text("Section 4.2 Callers at imminent risk")).expect("text");
    assert!(text.contains("Section 4.2 Callers at imminent risk"), "{text:?}");
}

#[test]
fn a_truncated_pdf_is_unreadable_not_a_panic() {
    let bytes = pdf_with_text("Section 4.2 Callers at imminent risk");
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
        let err = extract_text(DocKind::Pdf, &bytes[..cut]).expect_err("truncated");
        assert!(matches!(err, DocError::Unreadable(_)), "cut at {cut}: {err:?}");
    }
    assert!(matches!(extract_text(DocKind::Pdf, b"%PDF-1.4\ngarbage"), Err(DocError::Unreadable(_))));
}

#[test]
fn a_pdf_the_parser_panics_on_is_unreadable() {
    // pdf_extract panics (an `expect`) on a font name the page does not define, and on operators
    // with operands of the wrong type; the panic must become an error, not crash the server.
    for content in ["BT /F9 12 Tf 72 720 Td (x) Tj ET", "BT /F1 12 Tf 72 720 Td /Name Tj ET", "/X Do"] {
        let err = extract_text(DocKind::Pdf, &pdf(content)).expect_err("refused");
        assert!(matches!(err, DocError::Unreadable(_)), "{content}: {err:?}");
    }
}

#[test]
fn a_pdf_without_text_is_empty() {
    let err = extract_text(DocKind::Pdf, &pdf("0 0 m 100 100 l S")).expect_err("no text");
    assert!(matches!(err, DocError::Empty), "{err:?}");
    assert!(err.to_string().contains("no extractable text"));
}

#[test]
fn docx_paragraphs_tabs_and_breaks() {
    let body = concat!(
        r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>"#,
        r#"<w:r><w:t>Risk &amp; safety</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve">ask directly </w:t></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>Line one</w:t><w:br/><w:t>Line two</w:t></w:r></w:p>"#,
        r#"<w:p><w:r><w:delText>deleted</w:delText></w:r></w:p>"#,
        r#"<w:p><mc:AlternateContent><mc:Choice><w:r><w:t>Shape text</w:t></w:r></mc:Choice>"#,
        r#"<mc:Fallback><w:r><w:t>Shape text</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>"#,
    );
    let text = extract_text(DocKind::Docx, &docx(body)).expect("text");
    assert_eq!(text, "Risk & safety\task directly\nLine one\nLine two\n\nShape text");
}

#[test]
fn damaged_docx_is_unreadable() {
    let bytes = docx("<w:p><w:r><w:t>hi</w:t></w:r></w:p>");
    let err = extract_text(DocKind::Docx, &bytes[..bytes.len() / 2]).expect_err("damaged");
    assert!(matches!(err, DocError::Unreadable(_)), "{err:?}");
    let err = sniff(Some("p.docx"), &bytes[..bytes.len() / 2], ALL).expect_err("damaged");
    assert!(matches!(err, DocError::Unreadable(_)), "{err:?}");
    let bad_xml = docx("<w:p><w:r><w:t>hi</w:r></w:p>");
    assert!(matches!(extract_text(DocKind::Docx, &bad_xml), Err(DocError::Unreadable(_))));
    let empty = docx("<w:p/><w:p><w:r><w:t>  </w:t></w:r></w:p>");
    assert!(matches!(extract_text(DocKind::Docx, &empty), Err(DocError::Empty)));
}

#[test]
fn text_is_normalised() {
    let text = extract_text(DocKind::Txt, "\u{FEFF}  Title  \r\n\r\n\r\n\r\n\r\nBody \r\n".as_bytes()).expect("text");
    assert_eq!(text, "Title\n\n\nBody");
    assert!(matches!(extract_text(DocKind::Md, b" \n\t\n"), Err(DocError::Empty)));
    assert!(matches!(extract_text(DocKind::Txt, b"caf\xE9"), Err(DocError::Unreadable(_))));
}

#[tokio::test]
async fn read_upload_sniffs_and_extracts_in_the_child() {
    static ALLOWED: &[DocKind] = &[DocKind::Pdf, DocKind::Txt];
    let config = crate::common::extract_config();
    let read = |name: &str, bytes: Vec<u8>| {
        let config = config.clone();
        let name = name.to_owned();
        async move { admin::sandbox::read_upload(&config, Some(name), &bytes, ALLOWED).await }
    };
    let (kind, text) = read("c.pdf", pdf_with_text("A caller complained")).await.expect("read");
    assert_eq!((kind, text.as_str()), (DocKind::Pdf, "A caller complained"));
    let err = read("c.docx", docx("<w:p/>")).await.expect_err("not allowed");
    assert!(matches!(err, DocError::Unsupported { .. }));
}

// --- chunk ---

/// Every chunk is the text at its offset, within the limit, indexed in order, without edge
/// whitespace; consecutive chunks move forward.
fn assert_consistent(text: &str, chunks: &[Chunk], max_chars: usize) {
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chunks.iter().enumerate() {
        let len = c.text.chars().count();
        assert_eq!(c.index, i);
        assert!(len <= max_chars, "chunk {i} has {len} > {max_chars} chars");
        assert!(len > 0);
        assert_eq!(chars[c.start..c.start + len].iter().collect::<String>(), c.text, "chunk {i}");
        assert_eq!(c.text.trim(), c.text);
        if i > 0 {
            assert!(c.start > chunks[i - 1].start);
        }
    }
}

#[test]
fn chunks_respect_the_limit_in_characters_for_multibyte_text() {
    let sentence = "Größere Übungen für Berater:innen 🧑‍⚕️ sind wichtig. ";
    let text = sentence.repeat(40);
    let chunks = chunk(&text, 100, 20);
    assert!(chunks.len() > 10);
    assert_consistent(&text, &chunks, 100);
    // Sentence boundaries are preferred over a hard cut.
    for c in &chunks[..chunks.len() - 1] {
        assert!(c.text.ends_with("wichtig."), "{:?}", c.text);
    }
    // The last chunk reaches the end.
    let last = chunks.last().expect("chunks");
    assert_eq!(last.start + last.text.chars().count(), text.trim_end().chars().count());
}

#[test]
fn chunks_overlap() {
    let text: String = (0..300).map(|i| format!("word{i} ")).collect();
    let chunks = chunk(&text, 120, 30);
    assert_consistent(&text, &chunks, 120);
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_end = a.start + a.text.chars().count();
        assert!(b.start < a_end, "no overlap between {a:?} and {b:?}");
        assert!(a_end - b.start <= 30);
        // The carried text starts at a word.
        assert!(b.text.starts_with("word"), "{:?}", b.text);
    }
    let without = chunk(&text, 120, 0);
    assert_consistent(&text, &without, 120);
    for pair in without.windows(2) {
        assert!(pair[1].start >= pair[0].start + pair[0].text.chars().count());
    }
}

#[test]
fn chunks_prefer_paragraphs_then_sentences_then_words() {
    let text = "First paragraph is here. It has two sentences.\n\nSecond paragraph. Short.";
    let chunks = chunk(text, 60, 0);
    assert_consistent(text, &chunks, 60);
    assert_eq!(chunks[0].text, "First paragraph is here. It has two sentences.");
    assert_eq!(chunks[1].text, "Second paragraph. Short.");

    let text = "One sentence here. Another one follows and goes on and on";
    // The sentence end lies in the second half of the 30-character window; spaces come later.
    let chunks = chunk(text, 30, 0);
    assert_consistent(text, &chunks, 30);
    assert_eq!(chunks[0].text, "One sentence here.");

    let text = "alpha beta gamma delta epsilon zeta eta theta";
    let chunks = chunk(text, 20, 0);
    assert_consistent(text, &chunks, 20);
    assert!(chunks.iter().all(|c| !c.text.contains("  ")));
    assert_eq!(chunks[0].text, "alpha beta gamma");

    // No boundary at all: a hard cut, still on character boundaries.
    let text = "ü".repeat(25);
    let chunks = chunk(&text, 10, 2);
    assert_consistent(&text, &chunks, 10);
    assert_eq!(chunks[0].text.chars().count(), 10);
}

#[test]
fn chunking_nothing_gives_nothing() {
    assert!(chunk("", 100, 10).is_empty());
    assert!(chunk(" \n\n\t ", 100, 10).is_empty());
    assert_eq!(chunk("  short  ", 100, 10), vec![Chunk { index: 0, start: 2, text: "short".into() }]);
    // Degenerate limits still terminate and stay consistent.
    let chunks = chunk("abc def", 0, 5);
    assert_consistent("abc def", &chunks, 1);
}

// --- truncate_with_marker ---

#[test]
fn short_text_is_unchanged() {
    assert_eq!(truncate_with_marker("hello", 5), ("hello".to_owned(), false));
    assert_eq!(truncate_with_marker("", 0), (String::new(), false));
}

#[test]
fn long_text_is_cut_with_a_marker_within_the_limit() {
    let text: String = (0..500).map(|i| format!("Zeile {i}: Grüße 👋\n")).collect();
    let total = text.chars().count();
    let (cut, truncated) = truncate_with_marker(&text, 1000);
    assert!(truncated);
    assert!(cut.chars().count() <= 1000, "{}", cut.chars().count());
    let (kept, marker) = cut.rsplit_once('\n').expect("marker line");
    assert!(text.starts_with(kept));
    assert!(kept.ends_with("👋"), "cut at a line break: {kept:?}");
    assert_eq!(marker, format!("[… truncated: {} of {total} characters shown …]", kept.chars().count()));
}

#[test]
fn a_limit_too_small_for_the_marker_cuts_hard() {
    let (cut, truncated) = truncate_with_marker("ääääääääää", 4);
    assert_eq!((cut.as_str(), truncated), ("ääää", true));
}
