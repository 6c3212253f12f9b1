//! The server-side call recording: one stereo Ogg/Opus file per call, counselor left and caller
//! right, time-aligned by the call clock (one [`Recorder::tick`] per 20 ms), silence where nobody
//! speaks.
//!
//! Nothing is encoded for it. The file is a two-stream Opus file (RFC 7845 channel mapping
//! family 1, two uncoupled mono streams, left = the counselor's stream, right = the caller's):
//! the counselor's packets are stored as they came from the room, and the caller's are the very
//! packets the agent sent to the room, so the recording is what each side heard and costs a copy
//! per frame instead of a stereo encode (which was the largest cost of a call). A tick with no
//! packet for a side gets a stored 20 ms silence packet. Only a counselor whose client sends
//! packets of another length than 20 ms (both streams of a multistream packet must be equally
//! long) has their decoded audio encoded again, from then on.
//!
//! The Ogg framing (RFC 3533) and the Opus mapping (`OpusHead`, `OpusTags`, granule positions at
//! 48 kHz including the pre-skip) are written here: they are a few dozen lines, and no
//! maintained Ogg crate is already in the tree. Pages of about a second are handed to a writer
//! thread, so the media loop never waits on the disk. The file is written as `<name>.part` and
//! renamed at `finish`, so a crashed call leaves no half file under the final name.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;

use uuid::Uuid;

use crate::audio::{Encoder, FRAME_MS, FRAME_SAMPLES};

/// The recording the agent wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub bytes: u64,
}

/// Where a session's recording goes inside `RECORDINGS_DIR`: the name the service derives from
/// the session id too (the end report does not name the file).
pub fn path_for(dir: &Path, session_id: Uuid) -> PathBuf {
    dir.join(store::recording_file_name(session_id.into()))
}

/// A page holds about one second of packets (Ogg allows at most 255 lacing values).
const PACKETS_PER_PAGE: usize = 50;
/// Counselor packets waiting for their tick; beyond it (a burst after a stall) the oldest go, so
/// the two sides stay within this many frames of each other.
const MAX_QUEUED: usize = 5;
/// The pre-skip written to `OpusHead`: libopus' encoder delay at 48 kHz (6.5 ms), which is
/// what both the agent's encoder and WebRTC senders add.
const PRE_SKIP: u64 = 312;

/// 20 ms of silence as one mono Opus packet, encoded once per process.
fn silence_packet() -> &'static [u8] {
    static PACKET: OnceLock<Vec<u8>> = OnceLock::new();
    PACKET.get_or_init(|| {
        let mut encoder = Encoder::new().expect("an Opus encoder");
        let zeros = [0i16; FRAME_SAMPLES];
        // A few frames first: the first packets of a fresh encoder carry its start-up state.
        let mut packet = Vec::new();
        for _ in 0..5 {
            packet = encoder.encode(&zeros).expect("20 ms of zeros encode");
        }
        packet
    })
}

/// Stereo Ogg/Opus writer: counselor left, caller right, time-aligned by the call clock, silence
/// where nobody speaks.
pub struct Recorder {
    /// Counselor packets in arrival order, one taken per tick.
    counselor: VecDeque<Arc<[u8]>>,
    /// Set once the counselor's packets turned out not to be 20 ms: their PCM is encoded here.
    reencode: Option<(Encoder, Vec<i16>)>,
    packet: Vec<u8>,
    page: OggPage,
    serial: u32,
    sequence: u32,
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
        let mut recorder = Recorder {
            counselor: VecDeque::with_capacity(MAX_QUEUED + 1),
            reencode: None,
            packet: Vec::with_capacity(1024),
            page: OggPage::default(),
            serial: rand_serial(path),
            sequence: 0,
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
        let mut head = Vec::with_capacity(21);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(2); // channels
        head.extend_from_slice(&(PRE_SKIP as u16).to_le_bytes());
        head.extend_from_slice(&crate::audio::SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(1); // mapping family 1: a channel mapping table follows
        head.push(2); // streams: 0 = caller, 1 = counselor (last, so stored as received)
        head.push(0); // none of them coupled (two mono streams)
        head.extend_from_slice(&[1, 0]); // left <- stream 1 (counselor), right <- stream 0 (caller)
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

    /// One packet of the counselor's track as it came from the room, with its decoded audio
    /// (used only if the packets are not 20 ms long).
    pub fn counselor_audio(&mut self, packet: Arc<[u8]>, pcm: &[i16]) {
        if self.reencode.is_none() {
            if opus::packet::get_nb_samples(&packet, crate::audio::SAMPLE_RATE).ok() == Some(FRAME_SAMPLES) {
                push_bounded(&mut self.counselor, packet);
                return;
            }
            match Encoder::new() {
                Ok(e) => self.reencode = Some((e, Vec::with_capacity(2 * FRAME_SAMPLES))),
                Err(_) => return,
            }
        }
        let Some((encoder, pending)) = self.reencode.as_mut() else { return };
        pending.extend_from_slice(pcm);
        while pending.len() >= FRAME_SAMPLES {
            if let Ok(p) = encoder.encode(&pending[..FRAME_SAMPLES]) {
                push_bounded(&mut self.counselor, p.into());
            }
            pending.drain(..FRAME_SAMPLES);
        }
    }

    /// Called once per 20 ms tick with the caller's packet of that tick, if the caller spoke (a
    /// 20 ms mono packet from [`Encoder`]); the counselor's side is the next packet received.
    pub fn tick(&mut self, caller: Option<&[u8]>) -> io::Result<()> {
        let counselor = self.counselor.pop_front();
        self.packet.clear();
        self_delimited(caller.unwrap_or(silence_packet()), &mut self.packet);
        self.packet.extend_from_slice(counselor.as_deref().unwrap_or(silence_packet()));
        self.page.push_packet(&self.packet);
        self.frames += 1;
        if self.page.packets >= PACKETS_PER_PAGE {
            let granule = PRE_SKIP + self.frames * FRAME_SAMPLES as u64;
            self.emit_page(granule, 0)?;
        }
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

    /// Ends the file: the end-of-stream page (its granule position gives the exact length), then
    /// the rename.
    pub fn finish(mut self) -> io::Result<RecordingInfo> {
        let granule = PRE_SKIP + self.frames * FRAME_SAMPLES as u64;
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

/// Queues a counselor packet; beyond [`MAX_QUEUED`] the oldest goes.
fn push_bounded(queue: &mut VecDeque<Arc<[u8]>>, packet: Arc<[u8]>) {
    if queue.len() >= MAX_QUEUED {
        queue.pop_front();
    }
    queue.push_back(packet);
}

/// Appends `packet` in the self-delimiting framing of RFC 6716 appendix B, which every stream of
/// a multistream packet but the last uses: the frame length follows the TOC byte. Our encoder's
/// 20 ms packets are single-frame (code 0); anything else is recorded as silence.
fn self_delimited(packet: &[u8], out: &mut Vec<u8>) {
    let packet = if packet.first().is_some_and(|toc| toc & 0x03 == 0) { packet } else { silence_packet() };
    let (toc, frame) = (packet[0], &packet[1..]);
    out.push(toc);
    let n = frame.len();
    if n < 252 {
        out.push(n as u8);
    } else {
        let first = 252 + (n & 0x03);
        out.push(first as u8);
        out.push(((n - first) >> 2) as u8);
    }
    out.extend_from_slice(frame);
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
    use crate::audio::SAMPLE_RATE;

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

    /// Splits a two-stream packet into its streams' packets (the first self-delimited).
    pub(crate) fn split_streams(packet: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let toc = packet[0];
        let (len, at) =
            if packet[1] < 252 { (packet[1] as usize, 2) } else { (packet[1] as usize + 4 * packet[2] as usize, 3) };
        let mut first = vec![toc];
        first.extend_from_slice(&packet[at..at + len]);
        (first, packet[at + len..].to_vec())
    }

    /// Decodes a recording to (left, right) PCM after the pre-skip.
    fn decode(bytes: &[u8]) -> (Vec<i16>, Vec<i16>, u64) {
        let (packets, granule, flags) = read_ogg(bytes);
        assert_eq!((flags[0], *flags.last().expect("pages")), (FLAG_BOS, FLAG_EOS));
        let head = &packets[0];
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2, "two channels");
        assert_eq!(&head[18..21], &[1, 2, 0], "family 1, two streams, none coupled");
        assert_eq!(&head[21..23], &[1, 0], "left is stream 1, right is stream 0");
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
        assert_eq!(&packets[1][..8], b"OpusTags");
        let mut decoders = [(); 2].map(|_| opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).expect("decoder"));
        let (mut left, mut right) = (Vec::new(), Vec::new());
        let mut buf = vec![0i16; 5760];
        for p in &packets[2..] {
            let (caller, counselor) = split_streams(p);
            let n = decoders[0].decode(&caller, &mut buf, false).expect("caller stream decodes");
            assert_eq!(n, FRAME_SAMPLES);
            right.extend_from_slice(&buf[..n]);
            let n = decoders[1].decode(&counselor, &mut buf, false).expect("counselor stream decodes");
            assert_eq!(n, FRAME_SAMPLES, "both streams of a packet are 20 ms");
            left.extend_from_slice(&buf[..n]);
        }
        (left[pre_skip..].to_vec(), right[pre_skip..].to_vec(), granule - pre_skip as u64)
    }

    fn energy(pcm: &[i16], from_s: f32, to_s: f32) -> f64 {
        let (a, b) = ((from_s * 48_000.0) as usize, (to_s * 48_000.0) as usize);
        pcm[a..b].iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / (b - a) as f64
    }

    #[test]
    fn writes_a_stereo_ogg_opus_file_time_aligned_by_ticks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = path_for(dir.path(), Uuid::nil());
        let mut rec = Recorder::create(&path).expect("create");
        let (mut counselor, mut caller) = (Encoder::new().expect("enc"), Encoder::new().expect("enc"));
        // 1 s counselor (left), 1 s caller (right), 1 s nobody.
        for i in 0..150 {
            let frame = tone(440.0, FRAME_SAMPLES, i * FRAME_SAMPLES);
            match i {
                0..50 => {
                    rec.counselor_audio(counselor.encode(&frame).expect("encode").into(), &frame);
                    rec.tick(None)
                }
                50..100 => rec.tick(Some(&caller.encode(&frame).expect("encode"))),
                _ => rec.tick(None),
            }
            .expect("tick");
        }
        assert!(std::fs::metadata(&path).is_err(), "not under the final name before finish");
        let info = rec.finish().expect("finish");
        assert_eq!(info.duration_ms, 3000);
        let bytes = std::fs::read(&path).expect("file");
        assert_eq!(info.bytes, bytes.len() as u64);

        let (left, right, samples) = decode(&bytes);
        assert_eq!(samples, 150 * FRAME_SAMPLES as u64, "duration by granule position");
        // Inside each second, away from the edges the codec smears.
        let (l1, r1) = (energy(&left, 0.1, 0.9), energy(&right, 0.1, 0.9));
        let (l2, r2) = (energy(&left, 1.1, 1.9), energy(&right, 1.1, 1.9));
        let (l3, r3) = (energy(&left, 2.1, 2.8), energy(&right, 2.1, 2.8));
        assert!(l1 > 1e6 && r1 < l1 / 100.0, "counselor on the left: {l1} {r1}");
        assert!(r2 > 1e6 && l2 < r2 / 100.0, "caller on the right: {l2} {r2}");
        assert!(l3 < 1e4 && r3 < 1e4, "silence: {l3} {r3}");
    }

    #[test]
    fn counselor_packets_of_another_length_are_encoded_again_in_step() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ten.ogg");
        let mut rec = Recorder::create(&path).expect("create");
        // A sender using 10 ms packets: two per tick.
        let mut ten = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip).expect("enc");
        let mut out = vec![0u8; 1500];
        for i in 0..100 {
            if i < 50 {
                for half in 0..2 {
                    let pcm = tone(300.0, FRAME_SAMPLES / 2, i * FRAME_SAMPLES + half * FRAME_SAMPLES / 2);
                    let n = ten.encode(&pcm, &mut out).expect("encode");
                    rec.counselor_audio(out[..n].into(), &pcm);
                }
            }
            rec.tick(None).expect("tick");
        }
        rec.finish().expect("finish");
        let (left, right, samples) = decode(&std::fs::read(&path).expect("file"));
        assert_eq!(samples, 100 * FRAME_SAMPLES as u64);
        let (l1, l2, r1) = (energy(&left, 0.1, 0.9), energy(&left, 1.1, 1.9), energy(&right, 0.1, 0.9));
        assert!(l1 > 1e6 && l2 < 1e4 && r1 < 1e4, "counselor speech in its second only: {l1} {l2} {r1}");
    }

    #[test]
    fn a_burst_of_counselor_packets_after_a_stall_does_not_shift_the_rest_of_the_call() {
        let dir = tempfile::tempdir().expect("dir");
        let mut rec = Recorder::create(&dir.path().join("b.ogg")).expect("create");
        let mut enc = Encoder::new().expect("enc");
        for i in 0..40 {
            let frame = tone(440.0, FRAME_SAMPLES, i * FRAME_SAMPLES);
            rec.counselor_audio(enc.encode(&frame).expect("encode").into(), &frame);
        }
        assert_eq!(rec.counselor.len(), MAX_QUEUED, "at most {MAX_QUEUED} frames behind");
    }

    #[test]
    fn a_recorder_dropped_unfinished_leaves_no_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.ogg");
        let mut rec = Recorder::create(&path).expect("create");
        rec.tick(None).expect("tick");
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
