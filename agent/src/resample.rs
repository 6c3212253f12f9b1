//! 48 kHz <-> 24 kHz for the Realtime API (PCM16 at 24 kHz only), with rubato's FFT resampler.
//!
//! Each direction works on one 20 ms chunk at a time (960 samples at 48 kHz, 480 at 24 kHz) into
//! buffers allocated once, so the per-frame path does not allocate.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

use crate::audio::FRAME_SAMPLES;

/// Samples in 20 ms at 24 kHz.
pub const REALTIME_FRAME_SAMPLES: usize = FRAME_SAMPLES / 2;
/// The Realtime API's PCM rate.
pub const REALTIME_RATE: usize = 24_000;

/// A fixed-ratio converter of one 20 ms mono chunk per call.
pub struct Converter {
    fft: Fft<f32>,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    in_len: usize,
    out_len: usize,
}

impl Converter {
    /// 48 kHz -> 24 kHz (counselor audio to Realtime).
    pub fn down() -> Self {
        Self::new(48_000, 24_000, FRAME_SAMPLES)
    }

    /// 24 kHz -> 48 kHz (caller audio to the room).
    pub fn up() -> Self {
        Self::new(24_000, 48_000, REALTIME_FRAME_SAMPLES)
    }

    fn new(from: usize, to: usize, chunk: usize) -> Self {
        let fft = Fft::<f32>::new(from, to, chunk, 1, FixedSync::Both).expect("valid fixed ratio");
        let in_len = fft.input_frames_next();
        let out_len = fft.output_frames_next();
        Converter { fft, input: vec![vec![0.0; in_len]], output: vec![vec![0.0; out_len]], in_len, out_len }
    }

    /// Samples one call takes.
    pub fn input_len(&self) -> usize {
        self.in_len
    }

    /// Samples one call gives.
    pub fn output_len(&self) -> usize {
        self.out_len
    }

    /// Output samples of delay the converter adds (its filter's look-ahead).
    pub fn delay(&self) -> usize {
        self.fft.output_delay()
    }

    /// Converts exactly [`Self::input_len`] samples into exactly [`Self::output_len`] samples.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) {
        debug_assert_eq!(input.len(), self.in_len);
        debug_assert_eq!(output.len(), self.out_len);
        for (d, s) in self.input[0].iter_mut().zip(input) {
            *d = f32::from(*s) / 32768.0;
        }
        let adapter_in = SequentialSliceOfVecs::new(&self.input, 1, self.in_len).expect("sized");
        let mut adapter_out = SequentialSliceOfVecs::new_mut(&mut self.output, 1, self.out_len).expect("sized");
        if self.fft.process_into_buffer(&adapter_in, &mut adapter_out, None).is_err() {
            output.fill(0);
            return;
        }
        for (d, s) in output.iter_mut().zip(&self.output[0]) {
            *d = (s * 32768.0).clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// Forgets the filter state (a new utterance after a cut: no tail of the old one).
    pub fn reset(&mut self) {
        self.fft.reset();
    }
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter").field("in", &self.in_len).field("out", &self.out_len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: f64, freq: f64, start: usize, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * (start + i) as f64 / rate).sin()) as i16)
            .collect()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn sizes_are_one_frame_each_way() {
        let down = Converter::down();
        assert_eq!((down.input_len(), down.output_len()), (960, 480));
        let up = Converter::up();
        assert_eq!((up.input_len(), up.output_len()), (480, 960));
        // The delay is part of the added latency each way; keep it well under a frame.
        assert!(down.delay() < 480 && up.delay() < 960, "delays {} {}", down.delay(), up.delay());
    }

    #[test]
    fn a_tone_survives_the_round_trip() {
        let mut down = Converter::down();
        let mut up = Converter::up();
        let mut mid = vec![0i16; 480];
        let mut out = vec![0i16; 960];
        let mut last = 0.0;
        for k in 0..10 {
            down.process(&tone(48_000.0, 440.0, k * 960, 960), &mut mid);
            up.process(&mid, &mut out);
            last = rms(&out);
        }
        assert!((4500.0..6500.0).contains(&last), "rms {last}");
    }
}
