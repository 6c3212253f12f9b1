//! The server-side call recording: one stereo Ogg/Opus file per call, counselor left and caller
//! right, time-aligned by the call clock (one [`Recorder::tick`] per 20 ms), silence where nobody
//! speaks.
//!
//! The Ogg framing (RFC 3533) and the Opus mapping (RFC 7845: `OpusHead`, `OpusTags`, granule
//! positions at 48 kHz including the pre-skip) are written here: they are a few dozen lines, and
//! no maintained Ogg crate is already in the tree. Per tick the recorder interleaves into a reused
//! buffer and encodes one Opus packet; pages of about a second are handed to a writer thread, so
//! the media loop never waits on the disk. The file is written as `<name>.part` and renamed at
//! `finish`, so a crashed call leaves no half file under the final name.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use uuid::Uuid;

use crate::audio::{FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};

/// The recording the agent wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub bytes: u64,
}

/// Where a session's recording goes inside `RECORDINGS_DIR`; the admin service serves it from the
/// same name.
pub fn path_for(dir: &Path, session_id: Uuid) -> PathBuf {
    dir.join(format!("{session_id}.ogg"))
}

/// Voice in two channels needs little; 40 kb/s keeps a 30-minute call near 9 MB.
const BITRATE: i32 = 40_000;
/// A page holds about one second of packets (Ogg allows at most 255 lacing values).
const PACKETS_PER_PAGE: usize = 50;
const MAX_PACKET: usize = 4000;

/// Stereo Ogg/Opus writer: counselor left, caller right, time-aligned by the call clock, silence
/// where nobody speaks. Frames are 20 ms, 48 kHz mono i16 (960 samples).
pub struct Recorder {
    encoder: opus::Encoder,
    pcm: Vec<i16>,
    packet: Vec<u8>,
    page: OggPage,
    serial: u32,
    sequence: u32,
    pre_skip: u64,
    frames: u64,
    bytes: u64,
    pages: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    part: PathBuf,
    path: PathBuf,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("path", &self.path).field("frames", &self.frames).finish()
    }
}

fn opus_error(e: opus::Error) -> io::Error {
    io::Error::other(format!("opus: {e}"))
}

impl Recorder {
    pub fn create(path: &Path) -> io::Result<Recorder> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let file = File::create(&part)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new().name("recording".into()).spawn(move || {
            let mut out = io::BufWriter::with_capacity(64 * 1024, file);
            for chunk in rx {
                out.write_all(&chunk)?;
            }
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })?;
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Stereo, opus::Application::Voip).map_err(opus_error)?;
        encoder.set_bitrate(opus::Bitrate::Bits(BITRATE)).map_err(opus_error)?;
        let pre_skip = encoder.get_lookahead().map_err(opus_error)?.max(0) as u64;
        let mut recorder = Recorder {
            encoder,
            pcm: vec![0; FRAME_SAMPLES * 2],
            packet: vec![0; MAX_PACKET],
            page: OggPage::default(),
            serial: rand_serial(path),
            sequence: 0,
            pre_skip,
            frames: 0,
            bytes: 0,
            pages: Some(tx),
            thread: Some(thread),
            part,
            path: path.to_owned(),
        };
        recorder.write_headers()?;
        Ok(recorder)
    }

    fn write_headers(&mut self) -> io::Result<()> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(2); // channels
        head.extend_from_slice(&(self.pre_skip as u16).to_le_bytes());
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0: mono or stereo, no table
        self.page.push_packet(&head);
        self.emit_page(0, FLAG_BOS)?;
        let vendor = b"proto-trainer";
        let mut tags = Vec::with_capacity(8 + 4 + vendor.len() + 4);
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        self.page.push_packet(&tags);
        self.emit_page(0, 0)
    }

    /// Called once per 20 ms tick with whatever each side had in that tick (None = silence).
    pub fn tick(&mut self, counselor: Option<&[i16]>, caller: Option<&[i16]>) -> io::Result<()> {
        for (side, frame) in [(0, counselor), (1, caller)] {
            match frame {
                Some(f) => {
                    // A short frame is padded with silence; a long one is cut at the tick.
                    for i in 0..FRAME_SAMPLES {
                        self.pcm[2 * i + side] = f.get(i).copied().unwrap_or(0);
                    }
                }
                None => {
                    for i in 0..FRAME_SAMPLES {
                        self.pcm[2 * i + side] = 0;
                    }
                }
            }
        }
        self.encode_frame()?;
        self.frames += 1;
        if self.page.packets >= PACKETS_PER_PAGE {
            let granule = self.pre_skip + self.frames * FRAME_SAMPLES as u64;
            self.emit_page(granule, 0)?;
        }
        Ok(())
    }

    fn encode_frame(&mut self) -> io::Result<()> {
        let n = self.encoder.encode(&self.pcm, &mut self.packet).map_err(opus_error)?;
        self.page.push_packet(&self.packet[..n]);
        Ok(())
    }

    fn emit_page(&mut self, granule: u64, flags: u8) -> io::Result<()> {
        let bytes = self.page.finish(flags, granule, self.serial, self.sequence);
        self.sequence += 1;
        self.bytes += bytes.len() as u64;
        let sent = self.pages.as_ref().map(|tx| tx.send(bytes).is_ok()).unwrap_or(false);
        if sent { Ok(()) } else { Err(self.writer_failed()) }
    }

    /// The writer thread stopped early: its error, if it left one.
    fn writer_failed(&mut self) -> io::Error {
        self.pages = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the recording writer stopped"),
        }
    }

    /// Ends the file: one more frame of silence flushes the encoder's lookahead (the last page's
    /// granule position tells players to drop it), the end-of-stream page, then the rename.
    pub fn finish(mut self) -> io::Result<RecordingInfo> {
        self.pcm.fill(0);
        self.encode_frame()?;
        let granule = self.pre_skip + self.frames * FRAME_SAMPLES as u64;
        self.emit_page(granule, FLAG_EOS)?;
        self.pages = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result?,
            _ => return Err(io::Error::other("the recording writer panicked")),
        }
        std::fs::rename(&self.part, &self.path)?;
        Ok(RecordingInfo { path: self.path.clone(), duration_ms: self.frames * FRAME_MS, bytes: self.bytes })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropped without `finish` (the call failed): no half file is left behind.
        if self.thread.is_some() {
            self.pages = None;
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// A stream serial number; any value works for a single-stream file, but distinct ones make
/// concatenated files (chained Ogg) valid.
fn rand_serial(path: &Path) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in path.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h ^ std::process::id()
}

const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;

/// One Ogg page being filled: the lacing values and the packet data.
#[derive(Default)]
struct OggPage {
    lacing: Vec<u8>,
    data: Vec<u8>,
    packets: usize,
}

impl OggPage {
    fn push_packet(&mut self, packet: &[u8]) {
        let mut left = packet.len();
        while left >= 255 {
            self.lacing.push(255);
            left -= 255;
        }
        self.lacing.push(left as u8);
        self.data.extend_from_slice(packet);
        self.packets += 1;
    }

    fn finish(&mut self, flags: u8, granule: u64, serial: u32, sequence: u32) -> Vec<u8> {
        let mut page = Vec::with_capacity(27 + self.lacing.len() + self.data.len());
        page.extend_from_slice(b"OggS");
        page.push(0);
        page.push(flags);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&serial.to_le_bytes());
        page.extend_from_slice(&sequence.to_le_bytes());
        page.extend_from_slice(&[0; 4]);
        page.push(self.lacing.len() as u8);
        page.extend_from_slice(&self.lacing);
        page.extend_from_slice(&self.data);
        let crc = ogg_crc(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.lacing.clear();
        self.data.clear();
        self.packets = 0;
        page
    }
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value and final XOR 0.
pub(crate) fn ogg_crc(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, entry) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04C1_1DB7 } else { r << 1 };
            }
            *entry = r;
        }
        t
    });
    bytes.iter().fold(0u32, |crc, b| (crc << 8) ^ table[(((crc >> 24) as u8) ^ b) as usize])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A strict Ogg reader for the tests: checks capture patterns, CRCs and sequence numbers and
    /// answers the packets with the last page's granule position.
    pub(crate) fn read_ogg(bytes: &[u8]) -> (Vec<Vec<u8>>, u64, Vec<u8>) {
        let (mut packets, mut granule, mut flags, mut at, mut seq) = (Vec::new(), 0, Vec::new(), 0, 0);
        let mut partial = Vec::new();
        while at < bytes.len() {
            let page = &bytes[at..];
            assert_eq!(&page[..4], b"OggS", "capture pattern at {at}");
            let n = page[26] as usize;
            let lacing = &page[27..27 + n];
            let len = 27 + n + lacing.iter().map(|&l| l as usize).sum::<usize>();
            let mut copy = page[..len].to_vec();
            copy[22..26].fill(0);
            assert_eq!(ogg_crc(&copy), u32::from_le_bytes(page[22..26].try_into().expect("4")), "crc of page {seq}");
            assert_eq!(u32::from_le_bytes(page[18..22].try_into().expect("4")), seq);
            flags.push(page[5]);
            granule = u64::from_le_bytes(page[6..14].try_into().expect("8"));
            let mut data = 27 + n;
            for &l in lacing {
                partial.extend_from_slice(&page[data..data + l as usize]);
                data += l as usize;
                if l < 255 {
                    packets.push(std::mem::take(&mut partial));
                }
            }
            at += len;
            seq += 1;
        }
        (packets, granule, flags)
    }

    fn tone(freq: f32, n: usize, offset: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (offset + i) as f32 / SAMPLE_RATE as f32;
                ((t * freq * std::f32::consts::TAU).sin() * 12_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn writes_a_stereo_ogg_opus_file_time_aligned_by_ticks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = path_for(dir.path(), Uuid::nil());
        let mut rec = Recorder::create(&path).expect("create");
        // 1 s counselor (left), 1 s caller (right), 1 s nobody.
        for i in 0..150 {
            let frame = tone(440.0, FRAME_SAMPLES, i * FRAME_SAMPLES);
            match i {
                0..50 => rec.tick(Some(&frame), None),
                50..100 => rec.tick(None, Some(&frame)),
                _ => rec.tick(None, None),
            }
            .expect("tick");
        }
        assert!(std::fs::metadata(&path).is_err(), "not under the final name before finish");
        let info = rec.finish().expect("finish");
        assert_eq!(info.duration_ms, 3000);
        let bytes = std::fs::read(&path).expect("file");
        assert_eq!(info.bytes, bytes.len() as u64);

        let (packets, granule, flags) = read_ogg(&bytes);
        assert_eq!((flags[0], *flags.last().expect("pages")), (FLAG_BOS, FLAG_EOS));
        let head = &packets[0];
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2, "stereo");
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as u64;
        assert_eq!(&packets[1][..8], b"OpusTags");
        assert_eq!(granule - pre_skip, 150 * FRAME_SAMPLES as u64, "duration by granule position");

        let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Stereo).expect("decoder");
        let mut pcm = Vec::new();
        let mut buf = vec![0i16; 5760 * 2];
        for p in &packets[2..] {
            let n = decoder.decode(p, &mut buf, false).expect("decodes");
            pcm.extend_from_slice(&buf[..n * 2]);
        }
        let pcm = &pcm[pre_skip as usize * 2..];
        let energy = |from_s: f32, to_s: f32, ch: usize| -> f64 {
            let (a, b) = ((from_s * 48_000.0) as usize, (to_s * 48_000.0) as usize);
            (a..b).map(|i| f64::from(pcm[2 * i + ch]).powi(2)).sum::<f64>() / (b - a) as f64
        };
        // Inside each second, away from the edges the codec smears.
        let (l1, r1) = (energy(0.1, 0.9, 0), energy(0.1, 0.9, 1));
        let (l2, r2) = (energy(1.1, 1.9, 0), energy(1.1, 1.9, 1));
        let (l3, r3) = (energy(2.1, 2.9, 0), energy(2.1, 2.9, 1));
        assert!(l1 > 1e6 && r1 < l1 / 100.0, "counselor on the left: {l1} {r1}");
        assert!(r2 > 1e6 && l2 < r2 / 100.0, "caller on the right: {l2} {r2}");
        assert!(l3 < 1e4 && r3 < 1e4, "silence: {l3} {r3}");
    }

    #[test]
    fn a_recorder_dropped_unfinished_leaves_no_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.ogg");
        let mut rec = Recorder::create(&path).expect("create");
        rec.tick(None, None).expect("tick");
        drop(rec);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn crc_matches_the_reference_value() {
        // The CRC of "OggS" + zeros as computed by libogg's table.
        assert_eq!(ogg_crc(b""), 0);
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }
}
