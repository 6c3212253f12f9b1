//! The phone-line effect: band-limits the caller's 48 kHz voice to the telephone band
//! (about 300-3400 Hz), for scenarios practised as phone calls that opt in. Two second-order
//! high-pass and two low-pass Butterworth sections (24 dB/octave each side), in place and
//! allocation-free on the per-frame path.

use crate::audio::SAMPLE_RATE;

const LOW_HZ: f32 = 300.0;
const HIGH_HZ: f32 = 3400.0;

/// A biquad in transposed direct form II.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    z1: f32,
    z2: f32,
}

impl Biquad {
    /// RBJ cookbook coefficients, Q = 1/sqrt(2).
    fn new(high_pass: bool, cutoff: f32) -> Self {
        let w = std::f32::consts::TAU * cutoff / SAMPLE_RATE as f32;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let (b0, b1) = if high_pass { ((1.0 + cos) / 2.0, -(1.0 + cos)) } else { ((1.0 - cos) / 2.0, 1.0 - cos) };
        Biquad { b0: b0 / a0, b1: b1 / a0, b2: b0 / a0, a1: -2.0 * cos / a0, a2: (1.0 - alpha) / a0, z1: 0.0, z2: 0.0 }
    }

    #[inline]
    fn run(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.z1;
        self.z1 = self.b1 * x - self.a1 * y + self.z2;
        self.z2 = self.b2 * x - self.a2 * y;
        y
    }
}

/// Telephone band-pass for one audio stream; keep one per call (it has state across frames).
#[derive(Debug, Clone)]
pub struct PhoneLine {
    stages: [Biquad; 4],
}

impl Default for PhoneLine {
    fn default() -> Self {
        Self::new()
    }
}

impl PhoneLine {
    pub fn new() -> Self {
        PhoneLine {
            stages: [
                Biquad::new(true, LOW_HZ),
                Biquad::new(true, LOW_HZ),
                Biquad::new(false, HIGH_HZ),
                Biquad::new(false, HIGH_HZ),
            ],
        }
    }

    /// Filters a frame of 48 kHz samples in place.
    pub fn process(&mut self, frame: &mut [i16]) {
        for s in frame.iter_mut() {
            let mut x = f32::from(*s);
            for stage in &mut self.stages {
                x = stage.run(x);
            }
            *s = x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output RMS over input RMS for a sine, after the filter settles.
    fn gain(freq: f32) -> f32 {
        let mut line = PhoneLine::new();
        let mut frame = [0i16; 960];
        let (mut sum_in, mut sum_out) = (0f64, 0f64);
        for f in 0..50 {
            for (i, s) in frame.iter_mut().enumerate() {
                let t = (f * 960 + i) as f32 / SAMPLE_RATE as f32;
                *s = ((t * freq * std::f32::consts::TAU).sin() * 10_000.0) as i16;
            }
            let input = frame;
            line.process(&mut frame);
            if f >= 10 {
                sum_in += input.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
                sum_out += frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
            }
        }
        (sum_out / sum_in).sqrt() as f32
    }

    #[test]
    fn passes_the_voice_band_and_cuts_outside_it() {
        assert!((gain(1000.0) - 1.0).abs() < 0.1, "1 kHz passes: {}", gain(1000.0));
        assert!(gain(2000.0) > 0.85);
        assert!(gain(80.0) < 0.05, "80 Hz hum cut: {}", gain(80.0));
        assert!(gain(8000.0) < 0.05, "8 kHz cut: {}", gain(8000.0));
        assert!(gain(300.0) > 0.4 && gain(300.0) < 0.8, "about -6 dB at the corner: {}", gain(300.0));
    }

    #[test]
    fn loud_input_clamps_instead_of_wrapping() {
        let mut line = PhoneLine::new();
        let mut frame = [i16::MAX; 960];
        for (i, s) in frame.iter_mut().enumerate() {
            if (i / 24) % 2 == 0 {
                *s = i16::MIN;
            }
        }
        line.process(&mut frame);
        assert!(frame.iter().any(|&s| s != 0));
    }
}
