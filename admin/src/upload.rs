//! The upload extractor: every upload route takes a multipart form with a `file` field, or the
//! file itself as the body with its own Content-Type (`application/pdf`, `text/plain`,
//! `text/markdown`, the DOCX type or `application/octet-stream`; a `Content-Disposition: ...;
//! filename="x.pdf"` header names it), at most [`crate::MAX_UPLOAD_BYTES`] (413 beyond).
//!
//! [`UploadedFile`] is extracted without reading the body, so a handler authorizes (and counts
//! the rate limit) before [`UploadedFile::read`] takes the bytes; [`Upload::document`] has them
//! sniffed and their text extracted in the extraction child ([`crate::sandbox`]): 415 for a kind
//! the route does not take or a name that contradicts the bytes, 422 for a damaged, empty or
//! hostile document (one that crashed the child or hit its limits).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};

use crate::config::ExtractConfig;
use crate::documents::DocKind;
use crate::error::{ApiError, Result};

/// Stored file names are cut to this many characters.
const MAX_FILE_NAME_CHARS: usize = 255;

/// An upload not read yet: the request, held until the handler has authorized it.
pub struct UploadedFile(Request);

impl<S: Send + Sync> FromRequest<S> for UploadedFile {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        Ok(UploadedFile(req))
    }
}

impl UploadedFile {
    /// The uploaded file, from a multipart `file` field or the raw body.
    pub async fn read(self) -> Result<Upload> {
        receive(self.0).await
    }
}

/// An uploaded file as received.
pub struct Upload {
    /// The name the client gave (path parts dropped), if any.
    file_name: Option<String>,
    /// The Content-Type the client declared for the file.
    declared_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// The name to sniff with: the file name when its extension claims a kind, else a name built
    /// from the declared Content-Type (so `application/pdf` with text in it is a mismatch), else
    /// the name as given.
    fn claimed_name(&self) -> Option<String> {
        if let Some(name) = self.file_name.as_ref().filter(|n| extension_kind(n).is_some()) {
            return Some(name.clone());
        }
        let ext = self.declared_type.as_deref().and_then(mime_extension);
        ext.map(|ext| format!("upload.{ext}")).or_else(|| self.file_name.clone())
    }

    /// The name to store: the client's, else `{stem}.{kind}`.
    pub fn stored_name(&self, stem: &str, kind: DocKind) -> String {
        self.file_name.clone().unwrap_or_else(|| format!("{stem}.{}", kind.as_str()))
    }
}

fn extension_kind(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "pdf" => Some("pdf"),
        "docx" => Some("docx"),
        "txt" | "text" => Some("txt"),
        "md" | "markdown" => Some("md"),
        _ => None,
    }
}

fn mime_extension(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/pdf" => Some("pdf"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("docx"),
        "text/plain" => Some("txt"),
        "text/markdown" | "text/x-markdown" => Some("md"),
        _ => None,
    }
}

/// Content types a raw (non-multipart) upload may declare.
const RAW_TYPES: [&str; 6] = [
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "application/octet-stream",
];

/// A client-given file name without directories or control characters, at most 255 characters.
fn clean_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(MAX_FILE_NAME_CHARS).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// `filename="..."` (or unquoted) from a `Content-Disposition` header.
fn disposition_file_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_DISPOSITION)?.to_str().ok()?;
    value.split(';').map(str::trim).find_map(|part| {
        let (key, v) = part.split_once('=')?;
        key.trim().eq_ignore_ascii_case("filename").then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("the file is larger than {} MB", crate::MAX_UPLOAD_BYTES / (1024 * 1024)))
}

/// The uploaded file, from a multipart `file` field or the raw body.
async fn receive(req: Request) -> Result<Upload> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let read_error = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::BadRequest(format!("could not read the upload: {}", e.body_text()))
            }
        };
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        while let Some(field) = form.next_field().await.map_err(read_error)? {
            if field.name() != Some("file") {
                continue;
            }
            let file_name = field.file_name().and_then(clean_name);
            let declared_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(read_error)?;
            if bytes.len() > crate::MAX_UPLOAD_BYTES {
                return Err(too_large());
            }
            return Ok(Upload { file_name, declared_type, bytes: bytes.to_vec() });
        }
        Err(ApiError::validation("file", "the form has no `file` field"))
    } else if RAW_TYPES.iter().any(|t| content_type.starts_with(t)) {
        let file_name = disposition_file_name(req.headers()).as_deref().and_then(clean_name);
        let body = axum::body::to_bytes(req.into_body(), crate::MAX_UPLOAD_BYTES).await.map_err(|e| {
            let text = e.to_string();
            if text.contains("length limit") || text.contains("too large") {
                too_large()
            } else {
                ApiError::BadRequest(format!("could not read the upload: {text}"))
            }
        })?;
        Ok(Upload { file_name, declared_type: Some(content_type), bytes: body.to_vec() })
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send multipart/form-data with a `file` field, or the file as the body with its Content-Type \
             (application/pdf, text/plain, text/markdown, the DOCX type or application/octet-stream)"
                .into(),
        ))
    }
}

impl Upload {
    /// Sniffs and extracts the upload's text in the extraction child, mapping refusals to HTTP: a
    /// kind not allowed here or a name contradicting the bytes → 415 naming the allowed kinds;
    /// damaged, empty or hostile → 422; no extraction child can run → 500.
    pub async fn document(&self, extract: &ExtractConfig, allowed: &'static [DocKind]) -> Result<(DocKind, String)> {
        read_document(self, extract, allowed).await
    }
}

async fn read_document(
    upload: &Upload,
    extract: &ExtractConfig,
    allowed: &'static [DocKind],
) -> Result<(DocKind, String)> {
    use crate::documents::DocError;
    crate::sandbox::read_upload(extract, upload.claimed_name(), &upload.bytes, allowed).await.map_err(|e| match e {
        DocError::Unsupported { .. } => ApiError::UnsupportedMediaType(e.to_string()),
        DocError::Mismatch { .. } => {
            let kinds: Vec<String> = allowed.iter().map(|k| k.as_str().to_ascii_uppercase()).collect();
            ApiError::UnsupportedMediaType(format!("{e}; upload one of: {}", kinds.join(", ")))
        }
        DocError::TooLarge => too_large(),
        DocError::Unreadable(_) | DocError::Empty => ApiError::validation("file", e.to_string()),
        DocError::Unavailable(_) => ApiError::Internal(anyhow::anyhow!("document extraction: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_directories_and_control_characters() {
        assert_eq!(clean_name("C:\\fakepath\\policy.pdf").as_deref(), Some("policy.pdf"));
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_name(" a\u{0}b.txt ").as_deref(), Some("ab.txt"));
        assert_eq!(clean_name("dir/"), None);
    }

    #[test]
    fn declared_types_claim_a_kind_when_the_name_does_not() {
        let upload = |name: Option<&str>, declared: Option<&str>| Upload {
            file_name: name.map(str::to_owned),
            declared_type: declared.map(str::to_owned),
            bytes: Vec::new(),
        };
        assert_eq!(upload(Some("x.pdf"), Some("text/plain")).claimed_name().as_deref(), Some("x.pdf"));
        assert_eq!(upload(Some("notes"), Some("application/pdf")).claimed_name().as_deref(), Some("upload.pdf"));
        assert_eq!(upload(None, Some("text/plain; charset=utf-8")).claimed_name().as_deref(), Some("upload.txt"));
        assert_eq!(upload(Some("notes"), Some("application/octet-stream")).claimed_name().as_deref(), Some("notes"));
    }
}
