//! What one 20 ms frame costs the Opus encoder at a few complexities and bitrates, and the
//! decoder: the numbers behind `audio::SPEECH_COMPLEXITY`. Speech-like input (two partials under
//! a syllable-rate envelope, a little noise).
//! `cargo run --release -p proto-trainer-agent --example codec_cost`

use std::time::Instant;

const FRAMES: usize = 500;
const ROUNDS: usize = 4;

fn main() {
    let mut seed = 1u32;
    let frames: Vec<Vec<i16>> = (0..FRAMES)
        .map(|k| {
            (0..960)
                .map(|i| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let t = (k * 960 + i) as f32 / 48_000.0;
                    let env = (t * 3.0 * std::f32::consts::TAU).sin().abs();
                    let voice = (t * 220.0 * std::f32::consts::TAU).sin() * 6000.0
                        + (t * 660.0 * std::f32::consts::TAU).sin() * 2000.0;
                    (voice * env + ((seed >> 16) as f32 - 32768.0) * 0.02) as i16
                })
                .collect()
        })
        .collect();
    let mut out = vec![0u8; 1500];
    for (complexity, bitrate) in
        [(10, 0), (10, 32_000), (7, 32_000), (6, 32_000), (5, 32_000), (3, 32_000), (1, 32_000)]
    {
        let mut e = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).expect("encoder");
        e.set_complexity(complexity).expect("complexity");
        if bitrate > 0 {
            e.set_bitrate(opus::Bitrate::Bits(bitrate)).expect("bitrate");
        }
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            for f in &frames {
                bytes += e.encode(f, &mut out).expect("encode");
            }
        }
        let n = (FRAMES * ROUNDS) as f64;
        let label = if bitrate > 0 { format!("{} kb/s", bitrate / 1000) } else { "auto".into() };
        println!(
            "encode, complexity {complexity:>2}, {label:>8}: {:6.1} us/frame, {:.0} B/frame",
            t.elapsed().as_secs_f64() * 1e6 / n,
            bytes as f64 / n
        );
    }
    let mut e = agent::audio::Encoder::new().expect("encoder");
    let packets: Vec<Vec<u8>> = frames.iter().map(|f| e.encode(f).expect("encode")).collect();
    let mut d = agent::audio::Decoder::new().expect("decoder");
    let t = Instant::now();
    for _ in 0..ROUNDS {
        for p in &packets {
            std::hint::black_box(d.decode(p).expect("decode"));
        }
    }
    println!("decode: {:.1} us/frame", t.elapsed().as_secs_f64() * 1e6 / (FRAMES * ROUNDS) as f64);
}
