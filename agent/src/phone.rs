//! Phone-line effect: band-limits 48 kHz caller audio to telephone range (~300-3400 Hz).
//!
//! The bridge's minimal version of the interface in `tools/VOICE-INTERFACES.md` (the backend helper
//! owns this file): a second-order high-pass then low-pass (RBJ biquads), allocation-free.

/// One biquad section, direct form I.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    fn new(high_pass: bool, cutoff: f32, rate: f32) -> Self {
        let w0 = 2.0 * std::f32::consts::PI * cutoff / rate;
        let alpha = w0.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let (b0, b1, b2) = if high_pass {
            ((1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0)
        } else {
            ((1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0)
        };
        let a0 = 1.0 + alpha;
        Biquad {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2 - self.a1 * self.y1 - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[derive(Debug, Clone)]
pub struct PhoneLine {
    high: Biquad,
    low: Biquad,
}

impl Default for PhoneLine {
    fn default() -> Self {
        Self::new()
    }
}

impl PhoneLine {
    pub fn new() -> Self {
        PhoneLine { high: Biquad::new(true, 300.0, 48_000.0), low: Biquad::new(false, 3400.0, 48_000.0) }
    }

    /// Filters one frame of 48 kHz mono audio in place.
    pub fn process(&mut self, frame: &mut [i16]) {
        for s in frame.iter_mut() {
            let y = self.low.run(self.high.run(f32::from(*s)));
            *s = y.clamp(-32768.0, 32767.0) as i16;
        }
    }
}
